"""OCR engines on the HUD's numbers: RapidOCR (onnxruntime, weights in the wheel) vs Tesseract (Debian).

Both read the same fixed regions (chimera.evaluation.ocr.DEFAULT_REGIONS, scaled to the frame) of N synthetic
frames rendered with the pipeline's own style sampler (resolutions 640x360..1920x1080, JPEG, blur, real
backgrounds), and are scored exactly against the truth: money, armor, health. With --real, they read the
shared real screenshots in the real CS2 layout (REAL_CS2_REGIONS) and are scored against what a person read
off each frame (data/hand_labels/real_screenshots.csv; a blank is a number a person could not read, and is not scored).
Beside them, the constant answer (each field's commonest value among those labels: an optimistic bound).
Tesseract is optional: `apt-get install tesseract-ocr` and `pip install pytesseract`.

    python bench/bench_ocr.py --frames 25
    python bench/bench_ocr.py --real
    python bench/bench_ocr.py --frames 60 --det-min-side 736 192   # RapidOCR's detector at two input sizes
    python bench/bench_ocr.py --real --model models/perception      # a model's answers beside them (any model folder)
    python bench/bench_ocr.py --frames 60 --look cs2 --model models/perception   # the same states in the CS2 look

With --model, a model reads the same frames as one more row, decoding as `chimera analyze` does (params.yaml's model
and infer sections): on --real, per field and frame, against the hand labels the eval split's real slice is scored
on (metrics/report.md gives that slice per model).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chimera.evaluation.ocr import (DEFAULT_REGIONS, DEFAULT_VITALS_ORDER, REAL_CS2_REGIONS, OcrConfig, crop,  # noqa: E402
                                    read_hud, read_hud_extras)
from chimera.screens.hud import LOOKS, render_frame, sample_state, sample_style  # noqa: E402

FIELDS = ("player_money", *DEFAULT_VITALS_ORDER)


def tesseract_hud(image, regions) -> dict:
    """The same regions and the same right-aligned naming of the vitals as chimera.evaluation.ocr.read_hud."""
    import pytesseract

    def numbers(region):
        text = pytesseract.image_to_string(crop(image, regions[region]), config="--psm 6")
        return [int(n) for n in re.findall(r"\d+", text)]

    money, vitals = numbers("money"), [v for v in numbers("vitals") if v <= 100]
    out = dict.fromkeys(FIELDS)
    out["player_money"] = money[0] if money else None
    out.update(dict(zip(reversed(DEFAULT_VITALS_ORDER), reversed(vitals))))
    return out


def model_hud(folder: str):
    """A model as an engine: its game_state's numbers for an image (None where its answer is not schema-valid)."""
    import io

    from chimera.io import load_params
    from chimera.vlm.backends import LocalBackend
    from chimera.vlm.models import ModelConfig, load_model

    p = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    model, processor = load_model(ModelConfig.from_params(p["model"], name=folder))
    backend = LocalBackend(model, processor, folder, 1, p["infer"]["max_new_tokens"], constrained=p["infer"]["constrained"])

    def read(image) -> dict:
        png = io.BytesIO()
        image.save(png, "PNG")  # lossless: the pixels the file decodes to
        answer = backend.analyze([("frame", png.getvalue())])[0]
        if answer.error:
            raise SystemExit(f"{folder}: {answer.error}")
        got = {f: getattr(answer.parse.analysis.game_state, f) for f in FIELDS} if answer.parse.ok else {}
        read.answers.append(got)
        return got
    read.answers = []  # every answer, for the line that says what the model said
    return read


def real_frames(shared: Path) -> list[tuple[str, object, dict]]:
    """The shared real screenshots that show a HUD, with what a person read off each (the pipeline's hand labels)."""
    from PIL import Image

    from chimera.labeling.hand import read_hand_labels

    rows = read_hand_labels(Path(__file__).parents[1] / "data" / "hand_labels" / "real_screenshots.csv")
    return [(file, Image.open(shared / file).convert("RGB"), {f: row[f] for f in FIELDS}, None)
            for file, row in rows.items() if row["hud"]]


def synthetic_frames(n: int, shared: Path, look: str = "classic") -> list[tuple[str, object, dict]]:
    backgrounds = ["t2_chimera_gameplay_rifle.png", "neg_nohud_annotations_ancient2.jpg"]
    out = []
    for i in range(n):
        rng = random.Random(1000 + i)
        state, extras = sample_state(rng)
        image, _ = render_frame(state, extras, sample_style(rng, backgrounds), shared, look=look)
        out.append((f"synthetic-{i}", image, {f: getattr(state, f) for f in FIELDS}, extras_truth(state, extras)))
    return out


def extras_truth(state, extras) -> dict:
    """What the frame shows of the numbers the schema has no field for (None where it shows nothing)."""
    own_ct = state.player_side == "CT"
    return {"ammo_clip": extras.ammo_clip if extras.active_slot != "knife" else None,
            "round_time_s": None if state.bomb_status == "planted" else max(0, int(extras.time_left_s)),
            "score_own": extras.ct_score if own_ct else extras.t_score,
            "score_enemy": extras.t_score if own_ct else extras.ct_score}


def score_extras(frames) -> None:
    """RapidOCR on ammo, round timer and score (synthetic frames only), beside a constant (each one's mode)."""
    names = ("ammo_clip", "round_time_s", "score_own", "score_enemy")
    truths = [truth for *_, truth in frames]
    modes = {n: Counter(t[n] for t in truths if t[n] is not None).most_common(1)[0][0] for n in names}
    hits, const, labelled = dict.fromkeys(names, 0), dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    for _, image, _, truth in frames:
        got = read_hud_extras(image)
        for n in names:
            if truth[n] is not None:
                labelled[n] += 1
                hits[n] += got[n] == truth[n]
                const[n] += modes[n] == truth[n]
    print("rapidocr   " + ", ".join(f"{n} {hits[n]}/{labelled[n]}" for n in names) + "  (numbers outside the schema)")
    print("constant   " + ", ".join(f"{n} {const[n]}/{labelled[n]}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=25, help="synthetic frames to render")
    parser.add_argument("--real", action="store_true", help="the shared real screenshots and their hand labels")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/screenshots")
    parser.add_argument("--det-min-side", type=int, nargs="+", default=[OcrConfig.det_min_side],
                        help="RapidOCR's detector input: a crop's shorter side scaled to this (736: RapidOCR's own)")
    parser.add_argument("--model", help="a model folder whose answers are scored beside the OCR engines")
    parser.add_argument("--look", choices=LOOKS, default="classic", help="the synthetic frames' money and vitals: "
                        "the renderer's own (classic) or drawn as CS2 draws them (cs2); the same states either way")
    args = parser.parse_args()
    regions = REAL_CS2_REGIONS if args.real else DEFAULT_REGIONS
    frames = real_frames(args.shared) if args.real else synthetic_frames(args.frames, args.shared, args.look)
    engines = {}
    for side in args.det_min_side:
        config = OcrConfig(regions=dict(regions), det_min_side=side)
        engines[f"rapidocr@{side}"] = lambda im, config=config: {k: v["value"] for k, v in read_hud(im, config).items()}
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
        engines["tesseract"] = lambda im: tesseract_hud(im, regions)
    except Exception as exc:  # noqa: BLE001 - optional engine
        print(f"tesseract skipped: {exc}")
    if args.model:
        engines["model"] = model_hud(args.model)
    labelled = {f: [t[f] for _, _, t, _ in frames if t[f] is not None] for f in FIELDS}
    modes = {f: Counter(v).most_common(1)[0][0] if v else None for f, v in labelled.items()}
    engines["constant"] = lambda im: modes
    hits = {e: dict.fromkeys(FIELDS, 0) for e in engines}
    seconds = dict.fromkeys(engines, 0.0)
    for _, image, truth, _ in frames:
        for name, read in engines.items():
            start = time.perf_counter()
            got = read(image)
            seconds[name] += time.perf_counter() - start
            for f in FIELDS:
                hits[name][f] += truth[f] is not None and got.get(f) == truth[f]
    print(f"{'real' if args.real else 'synthetic'} frames: {len(frames)}; labelled values: "
          + ", ".join(f"{f} {len(v)}" for f, v in labelled.items()))
    for name in engines:
        cells = ", ".join(f"{f} {hits[name][f]}/{len(labelled[f])}" for f in FIELDS)
        print(f"{name:14s} {cells}; {seconds[name] / len(frames):.2f} s/frame")
    if args.model:  # what it answered on the frames a person read, most common first
        print("model's answers: " + "; ".join(
            f + " " + ", ".join(f"{v} x{c}" for v, c in Counter(
                got.get(f) for got, (_, _, truth, _) in zip(engines["model"].answers, frames) if truth[f] is not None
            ).most_common()) for f in FIELDS))
    if not args.real:
        score_extras(frames)


if __name__ == "__main__":
    main()
