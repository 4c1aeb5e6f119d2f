"""Stage pretrain_strategy: text-only LoRA SFT of the language backbone on the demo strategy dataset; its
val split (whole matches held out) gives the val loss."""

from _common import log, params

from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT
from chimera.io import CHECKPOINT_CACHE, read_parquet, write_json
from chimera.training.settings import lora_settings, model_settings
from chimera.training.sft import SFTRunConfig, text_dataset, train

p, seed, model = params("pretrain_strategy"), params()["seed"], params("model")
rows = read_parquet("data/processed/strategy/train.parquet").sample(frac=1.0, random_state=seed).head(p["max_examples"])
val = read_parquet("data/processed/strategy/val.parquet").sample(frac=1.0, random_state=seed).head(p["max_val_examples"])
dataset = text_dataset(list(zip(rows.prompt, rows.completion)), STRATEGY_SYSTEM_PROMPT)
val_dataset = text_dataset(list(zip(val.prompt, val.completion)), STRATEGY_SYSTEM_PROMPT)
cfg = SFTRunConfig(base_model=params("perception")["out"],  # the perceiving base (a redirect to the hub model on the 8B path)
                   output_dir="models/pretrain_strategy", max_steps=p["max_steps"], learning_rate=p["learning_rate"],
                   per_device_train_batch_size=p["batch_size"], seed=seed, dvclive_dir="dvclive/pretrain_strategy",
                   eval_steps=p["eval_steps"], checkpoint_dir=str(CHECKPOINT_CACHE / "pretrain_strategy"),
                   **lora_settings(params("train")), **model_settings(model))
summary = train(cfg, dataset, eval_dataset=val_dataset)
write_json("metrics/pretrain_strategy.json", {k: v for k, v in summary.items() if k != "config"})
log("pretrain_strategy").info("%d steps, loss %.3f -> %.3f, val loss %s -> %s", summary["steps"], summary["first_loss"],
                              summary["final_loss"], summary["first_val_loss"], summary["final_val_loss"])
