"""Stage pretrain_strategy: text-only LoRA SFT of the language backbone on the demo strategy dataset; its
val split (whole matches held out) gives the val loss.

`python stages/pretrain_strategy.py control` is the control arm (stage pretrain_control): the same prompts, the
same steps, the targets shuffled across the training examples with the seed: as many tokens of the same kind, no
game knowledge. Its val loss is taken on the real (unshuffled) val targets, so it shows what the control did not
learn. "C beats B" and "C beats the control" together say the game knowledge helped, not extra training alone.

With `rehearsal_frames` > 0 (the tiny model) both arms also rehearse the base's reading: that many frames of the
perception stage's own training pool, asked the research prompt and answered as the base learned to answer them
(`rehearsal_prompt`: research; short: the reading prompt and the game_state alone), are mixed into the same
batches. Text alone wears the tiny base's reading away (bench/explore_strategy_reading.py); the
frames are ones the base already learned from, so the arms see no new screenshots, and both arms get the same.
"""

from _common import log, params

import sys
from pathlib import Path

from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT, control_targets, pretraining_examples
from chimera.io import CHECKPOINT_CACHE, read_parquet, write_json
from chimera.training.settings import lora_settings, model_settings
from chimera.training.perception import rehearsal_rows, render_pool, stage_config
from chimera.training.sft import SFTRunConfig, answer_dataset, train, with_images
from chimera.vlm.models import TINY, ensure_local, load_processor

p, seed, model = params("pretrain_strategy"), params()["seed"], params("model")
arm = sys.argv[1] if len(sys.argv) > 1 else "strategy"
if arm not in ("strategy", "control"):
    raise SystemExit(f"pretrain_strategy: unknown arm {arm!r} (strategy | control)")
if p["rehearsal_prompt"] not in ("research", "short"):
    raise SystemExit(f"params.yaml pretrain_strategy.rehearsal_prompt: {p['rehearsal_prompt']!r} is not research | short")
out = p["out"] if arm == "strategy" else p["control_out"]
name = Path(out).name  # pretrain_strategy | pretrain_control: its curve and metrics are named after it
rows = read_parquet("data/processed/strategy/train.parquet").sample(frac=1.0, random_state=seed).head(p["max_examples"])
val = read_parquet("data/processed/strategy/val.parquet").sample(frac=1.0, random_state=seed).head(p["max_val_examples"])
completions = rows.completion.tolist()
if arm == "control":  # each prompt gets another example's target: same text, no link to the state
    completions = control_targets(completions, seed)
base = params("perception")["out"]  # the perceiving base (a redirect to the hub model on the 8B path)
processor = load_processor(ensure_local(base))  # its chat template writes the prompt
dataset = answer_dataset(processor, pretraining_examples(rows, completions), STRATEGY_SYSTEM_PROMPT)
val_dataset = answer_dataset(processor, pretraining_examples(val), STRATEGY_SYSTEM_PROMPT)
if p["rehearsal_frames"] and model["name"] == TINY:  # the 8B's reading is not ours to keep
    perception = stage_config(params("perception"), model["tiny_path"], seed, params("synthetic")["backgrounds"],
                              params("screens")["shared_screenshots"])
    frames = render_pool(perception, 0, p["rehearsal_frames"])  # the first of the base's own training frames
    dataset = with_images(dataset, rehearsal_rows(processor, frames, research=p["rehearsal_prompt"] == "research"))
    val_dataset = with_images(val_dataset, [])  # one collator (trl's vision one) for both; the val loss is the text's
cfg = SFTRunConfig(base_model=base,
                   output_dir=out, max_steps=p["max_steps"], learning_rate=p["learning_rate"],
                   per_device_train_batch_size=p["batch_size"], seed=seed, dvclive_dir=f"dvclive/{name}",
                   eval_steps=p["eval_steps"], checkpoint_dir=str(CHECKPOINT_CACHE / name),
                   **lora_settings(params("train")), **model_settings(model))
summary = train(cfg, dataset, eval_dataset=val_dataset)
write_json(f"metrics/{name}.json", {"arm": arm, **{k: v for k, v in summary.items() if k != "config"}})
log(name).info("%d steps, loss %.3f -> %.3f, val loss %s -> %s", summary["steps"], summary["first_loss"],
                              summary["final_loss"], summary["first_val_loss"], summary["final_val_loss"])
