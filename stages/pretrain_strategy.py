"""Stage pretrain_strategy: text-only LoRA SFT of the language backbone on the demo strategy dataset."""

from _common import log, params

from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT
from chimera.io import read_parquet, write_json
from chimera.training.sft import SFTRunConfig, text_dataset, train
from chimera.training.settings import lora_settings

p, t, seed, model = params("pretrain_strategy"), params("train"), params()["seed"], params("model")
rows = read_parquet("data/processed/strategy/train.parquet").sample(frac=1.0, random_state=seed).head(p["max_examples"])
dataset = text_dataset(list(zip(rows.prompt, rows.completion)), STRATEGY_SYSTEM_PROMPT)
cfg = SFTRunConfig(base_model=model["tiny_path"] if model["name"] == "tiny" else model["name"],
                   output_dir="models/pretrain_strategy", max_steps=p["max_steps"], learning_rate=p["learning_rate"],
                   per_device_train_batch_size=p["batch_size"], seed=seed, dvclive_dir="dvclive/pretrain_strategy",
                   **lora_settings(t))
summary = train(cfg, dataset)
write_json("metrics/pretrain_strategy.json", {k: v for k, v in summary.items() if k != "config"})
log("pretrain_strategy").info("%d steps, loss %.3f -> %.3f", summary["steps"], summary["first_loss"], summary["final_loss"])
