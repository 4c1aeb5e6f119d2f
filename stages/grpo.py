"""Stage grpo: GRPO from an SFT output with the five weighted rewards."""

from _common import log, params

from chimera.io import CHECKPOINT_CACHE, read_parquet, set_max_image_pixels, write_json
from chimera.records import load_records
from chimera.training.grpo import GRPORunConfig, grpo_dataset, train_grpo
from chimera.training.settings import lora_settings, model_settings
from chimera.vlm.views import load_view

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

p, seed = params("grpo"), params()["seed"]
splits = read_parquet("data/labeled/splits.parquet")
labels = load_records("data/labeled/labels")
rows = splits[splits.split == "train"].sample(frac=1.0, random_state=seed).head(p["examples"])
dataset = grpo_dataset([(r.path, labels[r.id]["analysis"], labels[r.id].get("p_win")) for r in rows.itertuples()],
                       load_view(p["base"]))
cfg = GRPORunConfig(base_model=p["base"], output_dir="models/E_grpo", max_steps=p["max_steps"],
                    learning_rate=p["learning_rate"], per_device_train_batch_size=p["batch_size"],
                    num_generations=p["num_generations"], max_completion_length=p["max_completion_length"],
                    temperature=p["temperature"], reward_weights=p["reward_weights"], seed=seed,
                    dvclive_dir="dvclive/E_grpo", checkpoint_dir=str(CHECKPOINT_CACHE / "E_grpo"),
                    **{**lora_settings(params("train")), "lora_dropout": 0.0},
                    **model_settings(params("model")))
summary = train_grpo(cfg, dataset)
write_json("metrics/train/E_grpo.json", {k: v for k, v in summary.items() if k != "config"})
log("grpo").info("%d steps; reward means %s", summary["steps"], summary["reward_means"])
