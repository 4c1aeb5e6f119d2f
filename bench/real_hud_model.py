"""Does a model read a real CS2 HUD? Its answers on the shared real screenshots, scored against the numbers a person
read off each frame (bench/real_hud_numbers.csv, the labels of `bench/bench_ocr.py --real`; a blank is a number the
person could not read, and is not scored), beside the constant answer: each field's commonest value among those
labels (an optimistic bound, since it is chosen on the frames it is scored on).

    python bench/real_hud_model.py models/perception          # the base the pipeline built (any model folder)

The eval split has no real frames on the embedded default (they need Claude or GSI labels), so this is the only
reading of a model on real HUDs offline. Decoding as `chimera analyze` does (params.yaml's model and infer sections).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chimera.io import load_params  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402

LABELS = ROOT / "bench" / "real_hud_numbers.csv"
FIELDS = ("player_money", "player_health", "player_armor")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a model folder (models/perception, models/sft/<cell>/final_model/...)")
    ap.add_argument("--screens", default=str(ROOT / "data" / "raw" / "screenshots"), help="the real screenshots")
    args = ap.parse_args()
    p = load_params(ROOT / "params.yaml")
    rows = list(csv.DictReader(LABELS.open()))
    model, processor = load_model(ModelConfig.from_params(p["model"], name=args.model))
    backend = LocalBackend(model, processor, args.model, p["infer"]["batch_size"], p["infer"]["max_new_tokens"],
                           constrained=p["infer"]["constrained"])
    answers = {a.id: a for a in backend.analyze([(r["file"], Path(args.screens) / r["file"]) for r in rows])}
    read = {f: [(int(r[f]), r["file"]) for r in rows if r[f]] for f in FIELDS}
    constant = {f: Counter(v for v, _ in read[f]).most_common(1)[0][0] for f in FIELDS}
    hits, said = Counter(), {f: Counter() for f in FIELDS}
    for f in FIELDS:
        for value, file in read[f]:
            a = answers[file]
            if a.error:
                sys.exit(f"{file}: {a.error}")
            got = getattr(a.parse.analysis.game_state, f) if a.parse.ok else None
            said[f][got] += 1
            hits[f] += got == value
    print(f"{args.model} on {len(rows)} real screenshots (labels: {LABELS.relative_to(ROOT)}):")
    print("| field | frames read by a person | the model | its answers | the constant (its value) |")
    print("|---|---|---|---|---|")
    for f in FIELDS:
        n = len(read[f])
        answers_said = ", ".join(f"{v} x{c}" for v, c in said[f].most_common(4))
        right = sum(v == constant[f] for v, _ in read[f])
        print(f"| {f} | {n} | {hits[f]}/{n} | {answers_said} | {right}/{n} ({constant[f]}) |")


if __name__ == "__main__":
    main()
