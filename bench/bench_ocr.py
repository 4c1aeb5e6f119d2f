"""OCR engines on the HUD's numbers: RapidOCR (onnxruntime, weights in the wheel) vs Tesseract (Debian).

Both read the same fixed regions (chimera.evaluation.ocr.DEFAULT_REGIONS, scaled to the frame) of N synthetic
frames rendered with the pipeline's own style sampler (resolutions 640x360..1920x1080, JPEG, blur, real
backgrounds), and are scored exactly against the truth: money, armor, health. Tesseract is optional: install
it with `apt-get install tesseract-ocr` and `pip install pytesseract`.

    python bench/bench_ocr.py --frames 25
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chimera.evaluation.ocr import DEFAULT_REGIONS, DEFAULT_VITALS_ORDER, OcrConfig, crop, read_hud  # noqa: E402
from chimera.screens.hud import render_frame, sample_state, sample_style  # noqa: E402

FIELDS = ("player_money", *DEFAULT_VITALS_ORDER)


def tesseract_hud(image) -> dict:
    import pytesseract

    def numbers(region):
        text = pytesseract.image_to_string(crop(image, DEFAULT_REGIONS[region]), config="--psm 6")
        return [int(n) for n in re.findall(r"\d+", text)]

    money, vitals = numbers("money"), [v for v in numbers("vitals") if v <= 100]
    out = {"player_money": money[0] if money else None}
    out.update({name: (vitals[i] if i < len(vitals) else None) for i, name in enumerate(DEFAULT_VITALS_ORDER)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/screenshots")
    args = parser.parse_args()
    engines = {"rapidocr": lambda im: {k: v["value"] for k, v in read_hud(im, OcrConfig()).items()}}
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
        engines["tesseract"] = tesseract_hud
    except Exception as exc:  # noqa: BLE001 - optional engine
        print(f"tesseract skipped: {exc}")
    backgrounds = ["t2_chimera_gameplay_rifle.png", "neg_nohud_annotations_ancient2.jpg"]
    hits = {e: dict.fromkeys(FIELDS, 0) for e in engines}
    seconds = dict.fromkeys(engines, 0.0)
    for i in range(args.frames):
        rng = random.Random(1000 + i)
        state, extras = sample_state(rng)
        image, _ = render_frame(state, extras, sample_style(rng, backgrounds), args.shared)
        for name, read in engines.items():
            start = time.perf_counter()
            got = read(image)
            seconds[name] += time.perf_counter() - start
            for f in FIELDS:
                hits[name][f] += got.get(f) == getattr(state, f)
    for name in engines:
        cells = ", ".join(f"{f} {hits[name][f]}/{args.frames}" for f in FIELDS)
        print(f"{name:10s} {cells}; {seconds[name] / args.frames:.2f} s/frame")


if __name__ == "__main__":
    main()
