"""Stage sft: visual SFT on N labeled screenshots for one run of the matrix (B, C, D); val loss on the val split.

    python stages/sft.py B_sft100             # what `dvc repro sft@B_sft100` runs
    python stages/sft.py B_sft100 --resume    # continue from the newest checkpoint even if the config changed
A crashed run of the same config resumes by itself: checkpoints live in .cache/checkpoints/<run> until it ends.
    python stages/sft.py B_sft100 --dry-run   # load, one step, print peak memory and the full-run estimate
"""

from _common import log, params

import json
import sys

from chimera.io import CHECKPOINT_CACHE, read_parquet, set_max_image_pixels, write_json
from chimera.records import load_records
from chimera.training.settings import lora_settings, model_settings
from chimera.training.sft import SFTRunConfig, dry_run, screen_dataset, train
from chimera.vlm.views import load_view

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

name = sys.argv[1]
p, seed = params("sft"), params()["seed"]
run = p["runs"][name]
splits = read_parquet("data/labeled/splits.parquet")
labels = load_records("data/labeled/labels")
shots = splits[splits.split == "train"].sample(frac=1.0, random_state=seed).head(run["shots"])
view = load_view(run["base"])  # the base's own view of a frame (HUD crops for the perceiving tiny base)
dataset = screen_dataset([(r.path, labels[r.id]["analysis"]) for r in shots.itertuples()], view)
val = screen_dataset([(r.path, labels[r.id]["analysis"]) for r in splits[splits.split == "val"].itertuples()], view)
cfg = SFTRunConfig(base_model=run["base"], output_dir=f"models/{name}", max_steps=run.get("max_steps", p["max_steps"]),
                   learning_rate=p["learning_rate"], per_device_train_batch_size=p["batch_size"], seed=seed,
                   dvclive_dir=f"dvclive/{name}", eval_steps=p["eval_steps"], checkpoint_dir=str(CHECKPOINT_CACHE / name),
                   early_stopping_patience=p["early_stopping_patience"],
                   **lora_settings(params("train")), **model_settings(params("model")))
if "--dry-run" in sys.argv:
    cfg.output_dir, cfg.dvclive_dir, cfg.checkpoint_dir = f"models/{name}-dry-run", None, None
    print(json.dumps(dry_run(cfg, dataset), indent=2))
    raise SystemExit(0)
summary = train(cfg, dataset, resume=True if "--resume" in sys.argv else None, eval_dataset=val)
write_json(f"metrics/train/{name}.json", {k: v for k, v in summary.items() if k != "config"})
log("sft").info("%s: %d examples, %d steps, loss %.3f -> %.3f, val loss %s", name, len(dataset), summary["steps"],
                summary["first_loss"], summary["final_loss"], summary["final_val_loss"])
