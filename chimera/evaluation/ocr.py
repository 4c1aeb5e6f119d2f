"""The OCR baseline: a pretrained OCR engine reads the HUD's numbers from fixed regions of the frame.

It is the one reader of real frames that was not trained here, and the classical method every VLM must beat
on the numeric HUD fields. Engine: RapidOCR (PP-OCRv4 detection + recognition, ONNX weights shipped inside
the `rapidocr-onnxruntime` wheel, so nothing downloads). Chosen over Tesseract 5.3 by measurement on the
synthetic frames (`bench/bench_ocr.py`, BENCHMARKS.md): money 24/25 vs 17/25, armor 21 vs 11, health 20 vs 9.

Regions are fractions of the frame (x0, y0, x1, y1), so they scale with the resolution; they live in
params.yaml (`ocr.regions`). The "vitals" region holds two numbers, named left to right by `ocr.vitals_order`.
`REAL_CS2_REGIONS` is the layout of the real game's HUD (health beside the shield, a third of the way across),
measured on the shared screenshots by `bench/bench_ocr.py --real`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

from chimera.schema import numeric_range

DEFAULT_REGIONS = {"money": (0.0, 0.87, 0.20, 1.0), "vitals": (0.24, 0.87, 0.56, 1.0)}
DEFAULT_VITALS_ORDER = ("player_armor", "player_health")
REAL_CS2_REGIONS = {"money": (0.0, 0.87, 0.20, 1.0), "vitals": (0.27, 0.88, 0.40, 1.0)}
# HUD numbers the schema has no field for (so the report cannot score them; bench/bench_ocr.py does)
EXTRA_REGIONS = {"ammo": (0.76, 0.905, 0.97, 1.0), "timer": (0.44, 0.0, 0.56, 0.06), "score": (0.47, 0.045, 0.53, 0.095)}
MIN_CROP_HEIGHT = 64  # PP-OCR's recogniser wants text a few dozen pixels tall: small crops are upscaled


@dataclass
class OcrConfig:
    regions: dict = field(default_factory=lambda: dict(DEFAULT_REGIONS))
    vitals_order: tuple = DEFAULT_VITALS_ORDER
    min_confidence: float = 0.9          # the hybrid takes OCR's value only at or above this
    threads: int = -1                    # onnxruntime intra-op threads (-1: one per core); 1 in worker processes
    det_min_side: int | None = 256       # the detector scales a crop's shorter side to this; None: RapidOCR's 736,
    # which blows a 141-pixel HUD strip up 5x: the baseline stage took 2 min 33 s there, 23 s here (BENCHMARKS.md)


@lru_cache(maxsize=2)
def engine(threads: int = -1, det_min_side: int | None = None):
    """The RapidOCR engine (loads three ONNX models once, about a second); `threads`: onnxruntime's intra-op threads
    (-1: its default, one per core); `det_min_side`: the detector's input scales its shorter side to this (None:
    RapidOCR's default, 736)."""
    from rapidocr_onnxruntime import RapidOCR

    settings = {**({"intra_op_num_threads": threads} if threads > 0 else {}),
                **({"det_limit_side_len": det_min_side} if det_min_side else {})}
    return RapidOCR(**settings)


def read_text(image: Image.Image, threads: int = -1, det_min_side: int | None = None) -> list[tuple[str, float, float]]:
    """Every text line the engine finds: (text, confidence, left x), left to right."""
    if image.height < MIN_CROP_HEIGHT:
        factor = MIN_CROP_HEIGHT / max(1, image.height)
        image = image.resize((max(1, int(image.width * factor)), MIN_CROP_HEIGHT), Image.BICUBIC)
    result, _ = engine(threads, det_min_side)(np.asarray(image.convert("RGB")))
    lines = [(str(text), float(conf), float(min(x for x, _ in box))) for box, text, conf in (result or [])]
    return sorted(lines, key=lambda line: line[2])


def _numbers(lines: list[tuple[str, float, float]]) -> list[tuple[int, float]]:
    """Integers in reading order; 'S' before digits is the engine's reading of '$'."""
    out = []
    for text, conf, _ in lines:
        for token in re.findall(r"[$S]?\d[\d,]*", text):
            digits = re.sub(r"\D", "", token)
            if digits and len(digits) <= 6:
                out.append((int(digits), conf))
    return out


def _in_range(name: str, value: int) -> bool:
    """A number the game_state can hold in that field (the schema's bounds): anything else is a misreading."""
    low, high = numeric_range(name)
    return (low is None or value >= low) and (high is None or value <= high)


def crop(image: Image.Image, region) -> Image.Image:
    x0, y0, x1, y1 = region
    w, h = image.size
    return image.crop((int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)))


def read_hud(image: Image.Image, config: OcrConfig | None = None) -> dict[str, dict]:
    """{field: {"value": int | None, "confidence": float}} for player_money, player_armor, player_health."""
    config = config or OcrConfig()
    out = {name: {"value": None, "confidence": 0.0} for name in ("player_money", *config.vitals_order)}
    money = _numbers(read_text(crop(image, config.regions["money"]), config.threads, config.det_min_side))
    money = [(v, c) for v, c in money if _in_range("player_money", v)]  # "$7305" and a stray "0" is no money
    if money:
        value, conf = max(money, key=lambda m: (m[0] % 50 == 0, m[1]))  # HUD money is a multiple of 50
        out["player_money"] = {"value": value, "confidence": conf}
    vitals = _numbers(read_text(crop(image, config.regions["vitals"]), config.threads, config.det_min_side))
    vitals = [(v, c) for v, c in vitals if _in_range("player_health", v)]  # armor and health share 0-100
    # right-aligned: the rightmost number is health in both layouts, and the small armor number (CS2 draws it
    # inside the shield icon) is the one the engine misses, so a lone number is health
    for name, (value, conf) in zip(reversed(config.vitals_order), reversed(vitals)):
        out[name] = {"value": value, "confidence": conf}
    return out


def read_hud_extras(image: Image.Image, regions: dict | None = None) -> dict[str, int | None]:
    """ammo_clip ("21 / 71": the first number), round_time_s ("1:19" -> 79; absent while the bomb icon replaces
    the timer) and score_own / score_enemy (left and right of the top panel; a C4 countdown between them and
    teammates' "$" money under the portraits are skipped)."""
    regions = regions or EXTRA_REGIONS
    out: dict[str, int | None] = dict.fromkeys(("ammo_clip", "round_time_s", "score_own", "score_enemy"))
    ammo = _numbers(read_text(crop(image, regions["ammo"])))
    if ammo:
        out["ammo_clip"] = ammo[0][0]
    timer = "".join(t for t, _, _ in read_text(crop(image, regions["timer"])))  # "1:" + "02" read apart
    match = re.search(r"(\d{1,2})\s*[:.\uff1a]\s*(\d{2})", timer)  # \uff1a: a full-width colon
    if match:
        out["round_time_s"] = int(match.group(1)) * 60 + int(match.group(2))
    lines = [line for line in read_text(crop(image, regions["score"])) if "$" not in line[0]]
    scores = [v for v, _ in _numbers(lines) if v <= 30]
    if len(scores) >= 2:
        out["score_own"], out["score_enemy"] = scores[0], scores[-1]
    return out


def ocr_config(params: dict | None) -> OcrConfig:
    """params.yaml `ocr` section -> OcrConfig."""
    params = params or {}
    return OcrConfig(regions={k: tuple(v) for k, v in params.get("regions", DEFAULT_REGIONS).items()},
                     vitals_order=tuple(params.get("vitals_order", DEFAULT_VITALS_ORDER)),
                     min_confidence=params.get("min_confidence", OcrConfig.min_confidence),
                     det_min_side=params.get("det_min_side", OcrConfig.det_min_side))
