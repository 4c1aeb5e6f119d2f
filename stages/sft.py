"""Stage sft: visual SFT of one cell of the research grid (params.yaml `sweep`: arm x shots x seed), from its arm's
base at its seed (stage pretrain: models/arms/<arm>-<seed>); val loss on the val split.

    python stages/sft.py perception 100 0           # what `dvc repro sft@100-perception-0` runs (B, seed 0)
    python stages/sft.py perception 100 0 --resume  # continue from the newest checkpoint even if the config changed
A crashed run of the same config resumes by itself: checkpoints live in .cache/checkpoints/sft/<cell> until it ends.
    python stages/sft.py perception 100 0 --dry-run # load, one step, print peak memory and the full-run estimate

The shots are nested: a seed's train split in one shuffled order, each run taking its head, so the 20 shots of a
seed are among its 100. The steps follow `sweep.equal`: equal epochs (shots * epochs / batch) or equal steps.
"""

from _common import log, params

import json
import math
import sys

from chimera.grid import arm_base, cell_key, cell_shots
from chimera.io import CHECKPOINT_CACHE, read_parquet, set_max_image_pixels, write_json
from chimera.records import load_records
from chimera.training.settings import lora_settings, model_settings
from chimera.training.sft import SFTRunConfig, dry_run, screen_dataset, train
from chimera.vlm.models import ensure_local
from chimera.vlm.views import load_view

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

arm, shots, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
name = cell_key(arm, shots, seed)
p, sweep = params("sft"), params("sweep")
if sweep["equal"] not in ("epochs", "steps"):
    raise SystemExit(f"params.yaml sweep.equal: {sweep['equal']!r} is not 'epochs' or 'steps'")
steps = (math.ceil(shots * sweep["epochs"] / p["batch_size"]) if sweep["equal"] == "epochs" else sweep["steps"])
base = ensure_local(arm_base(arm, seed))  # the vision-only arm's folder is a redirect to the perceiving base
splits = read_parquet("data/labeled/splits.parquet")
labels = load_records("data/labeled/labels")
try:
    rows = cell_shots(splits, shots, seed)
except ValueError as exc:
    raise SystemExit(f"sft {name}: {exc}") from exc
view = load_view(base)  # the base's own view of a frame (HUD crops for the perceiving tiny base)
dataset = screen_dataset([(r.path, labels[r.id]["analysis"]) for r in rows.itertuples()], view)
val = screen_dataset([(r.path, labels[r.id]["analysis"]) for r in splits[splits.split == "val"].itertuples()], view)
cfg = SFTRunConfig(base_model=base, output_dir=f"models/{name}", max_steps=steps,
                   learning_rate=p["learning_rate"], per_device_train_batch_size=p["batch_size"], seed=seed,
                   dvclive_dir=f"dvclive/{name}", eval_steps=p["eval_steps"], checkpoint_dir=str(CHECKPOINT_CACHE / name),
                   early_stopping_patience=p["early_stopping_patience"],
                   **lora_settings(params("train")), **model_settings(params("model")))
if "--dry-run" in sys.argv:
    cfg.output_dir, cfg.dvclive_dir, cfg.checkpoint_dir = f"models/{name}-dry-run", None, None
    print(json.dumps(dry_run(cfg, dataset), indent=2))
    raise SystemExit(0)
summary = train(cfg, dataset, resume=True if "--resume" in sys.argv else None, eval_dataset=val)
write_json(f"metrics/train/{name}.json", {"arm": arm, "shots": shots, "seed": seed, "base": base,
                                          **{k: v for k, v in summary.items() if k != "config"}})
log("sft").info("%s: %d examples, %d steps, loss %s -> %s, val loss %s", name, len(dataset), summary["steps"],
                summary["first_loss"], summary["final_loss"], summary["final_val_loss"])  # None under logging_steps
