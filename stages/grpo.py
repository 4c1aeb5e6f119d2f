"""Stage grpo: E, GRPO with the six weighted rewards from one SFT cell of the grid (params.yaml `grpo`: arms x
seeds at `grpo.shots`), sampling inside the decoding schema as the evaluation decodes.

    python stages/grpo.py perception 0          # what `dvc repro grpo@perception-0` runs: E after B, seed 0
A crashed run resumes by itself: checkpoints live in .cache/checkpoints/grpo/<arm>-<shots>-<seed> until it ends.
"""

from _common import log, params

import sys

from chimera.grid import cell_shots, grpo_cells, grpo_key
from chimera.io import CHECKPOINT_CACHE, read_parquet, set_max_image_pixels, write_json
from chimera.records import load_records
from chimera.training.grpo import GRPORunConfig, grpo_dataset, train_grpo
from chimera.training.settings import lora_settings, model_settings
from chimera.vlm.views import load_view

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

if len(sys.argv) < 3:
    raise SystemExit("usage: python stages/grpo.py ARM SEED (as dvc.yaml's grpo matrix runs it)")
p = params("grpo")
arm, seed = sys.argv[1], int(sys.argv[2])
name = grpo_key(arm, p["shots"], seed)
cell = grpo_cells({"shots": p["shots"], "arms": [arm], "seeds": [seed]})[name]
splits = read_parquet("data/labeled/splits.parquet")
labels = load_records("data/labeled/labels")
rows = cell_shots(splits, p["shots"], seed).head(p["examples"])  # the prompts: the SFT cell's own shots
dataset = grpo_dataset([(r.path, labels[r.id]["analysis"], labels[r.id].get("p_win")) for r in rows.itertuples()],
                       load_view(cell["base"]))
cfg = GRPORunConfig(base_model=cell["base"], output_dir=f"models/{name}", max_steps=p["max_steps"],
                    learning_rate=p["learning_rate"], per_device_train_batch_size=p["batch_size"],
                    num_generations=p["num_generations"], max_completion_length=p["max_completion_length"],
                    temperature=p["temperature"], reward_weights=p["reward_weights"], constrained=p["constrained"],
                    forced_tokens_in_loss=p["forced_tokens_in_loss"], logprobs_over_allowed=p["logprobs_over_allowed"],
                    seed=seed, dvclive_dir=f"dvclive/{name}", checkpoint_dir=str(CHECKPOINT_CACHE / name),
                    **{**lora_settings(params("train")), "lora_dropout": 0.0},
                    **model_settings(params("model")))
summary = train_grpo(cfg, dataset)
write_json(f"metrics/train/{name}.json", {k: v for k, v in summary.items() if k != "config"})
log("grpo").info("%s: %d steps; reward %s", name, summary["steps"], summary["reward_windows"])
