"""Stage pretrain_perception: the tiny model learns to read the HUD (chimera/training/perception.py) and becomes the
base of every model of the experiment. On the 8B path (model.name a hub id or a model folder) the pretrained
model already reads: the stage writes a redirect to it and trains nothing."""

from _common import log, params

from pathlib import Path

from tqdm import tqdm

from chimera.io import CHECKPOINT_CACHE, write_json
from chimera.training.perception import redirect_to_pretrained, stage_config, train

out = Path(params("perception")["out"])
why = redirect_to_pretrained(params("model")["name"], out)
if why:
    write_json("metrics/perception.json", {"skipped": why})
    log("pretrain_perception").info("skipped: %s", why)
    raise SystemExit(0)

cfg = stage_config(params("perception"), params("model")["tiny_path"], params()["seed"],
                   params("synthetic")["backgrounds"], params("screens")["shared_screenshots"],
                   dvclive_dir="dvclive/perception", checkpoint_dir=str(CHECKPOINT_CACHE / "perception"))
with tqdm(total=cfg.total_steps, desc="perception", unit="step") as bar:
    summary = train(cfg, progress=lambda message: bar.write(message), on_step=bar.update)
write_json("metrics/perception.json", {k: v for k, v in summary.items() if k != "config"})
log("pretrain_perception").info("%d steps on %d frames: held-out value accuracy %.1f%%, schema-valid %.0f%%",
                                summary["steps"], summary["frames"], 100 * summary["held_out"]["value_accuracy"],
                                100 * summary["held_out"]["schema_valid"])
