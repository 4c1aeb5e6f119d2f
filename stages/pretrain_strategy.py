"""Stage pretrain (a matrix over params.yaml sweep.arms x sweep.seeds): an arm's pretraining at one seed, the base
its SFT cells at that seed start from (models/arms/<arm>-<seed>, chimera.grid.arm_folder).

    python stages/pretrain_strategy.py pretrain_strategy 1   # what `dvc repro pretrain@pretrain_strategy-1` runs

pretrain_strategy: text-only LoRA SFT of the language backbone on the demo strategy dataset; its val split (whole
matches held out) gives the val loss. pretrain_control, the control arm: the same prompts, the same steps, the
targets shuffled across the training examples with the seed: as many tokens of the same kind, no game knowledge.
Its val loss is taken on the real (unshuffled) val targets, so it shows what the control did not learn. "C beats B"
and "C beats the control" together say the game knowledge helped, not extra training alone. perception, the
vision-only arm, has no pretraining: its folder is a redirect to the perceiving base, and the stage measures that
base's val loss on the same val split, the point the other arms' curves start from.

The seed draws the texts, the val examples, the control's shuffle and the training order, so the grid's seeds
cover the pretraining's randomness as well as the screenshot SFT's.

With `rehearsal_frames` > 0 (the tiny model) both pretrained arms also rehearse the base's reading: that many
frames of the perception stage's own training pool (the top-level seed's: the frames the base learned from),
asked the research prompt and answered as the base learned to answer them (`rehearsal_prompt`: research; short:
the reading prompt and the game_state alone), are mixed into the same batches. Text alone wears the tiny base's
reading away (bench/explore_strategy_reading.py); the arms see no new screenshots, and both get the same.
"""

from _common import log, params

import sys

from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT, control_targets, pretraining_examples
from chimera.grid import ARM_PRETRAINING, arm_folder
from chimera.io import CHECKPOINT_CACHE, read_parquet, write_json
from chimera.training.settings import lora_settings, model_settings
from chimera.training.perception import rehearsal_rows, render_pool, stage_config
from chimera.training.sft import SFTRunConfig, answer_dataset, evaluate_only, train, with_images
from chimera.vlm.models import TINY, ensure_local, load_processor, redirect

p, pool_seed, model = params("pretrain_strategy"), params()["seed"], params("model")
if len(sys.argv) != 3 or sys.argv[1] not in ARM_PRETRAINING or not sys.argv[2].isdigit():
    raise SystemExit(f"usage: pretrain_strategy.py ARM SEED, ARM one of {', '.join(ARM_PRETRAINING)} (got {sys.argv[1:]})")
arm, seed = sys.argv[1], int(sys.argv[2])
pretraining = ARM_PRETRAINING[arm]
if p["rehearsal_prompt"] not in ("research", "short"):
    raise SystemExit(f"params.yaml pretrain_strategy.rehearsal_prompt: {p['rehearsal_prompt']!r} is not research | short")
out = arm_folder(arm, seed)
name = f"arms/{arm}-{seed}"  # its curve, metrics and checkpoints are named after it
val = read_parquet("data/processed/strategy/val.parquet").sample(frac=1.0, random_state=seed).head(p["max_val_examples"])
base = params("perception")["out"]  # the perceiving base (a redirect to the hub model on the 8B path)
processor = load_processor(ensure_local(base))  # its chat template writes the prompt
val_dataset = answer_dataset(processor, pretraining_examples(val), STRATEGY_SYSTEM_PROMPT)
rehearse = p["rehearsal_frames"] and model["name"] == TINY  # the 8B's reading is not ours to keep
if rehearse:
    val_dataset = with_images(val_dataset, [])  # one collator (trl's vision one) for both; the val loss is the text's
cfg = SFTRunConfig(base_model=base,
                   output_dir=out, max_steps=p["max_steps"], learning_rate=p["learning_rate"],
                   per_device_train_batch_size=p["batch_size"], seed=seed, dvclive_dir=f"dvclive/{name}",
                   eval_steps=p["eval_steps"], checkpoint_dir=str(CHECKPOINT_CACHE / name),
                   **lora_settings(params("train")), **model_settings(model))
if not pretraining:  # the vision-only arm: the base itself, and the val loss the pretrained arms start from
    summary = evaluate_only(cfg, val_dataset)
    redirect(base, out, "the vision-only arm has no pretraining: its SFT starts from the perceiving base")
else:
    rows = read_parquet("data/processed/strategy/train.parquet").sample(frac=1.0, random_state=seed).head(p["max_examples"])
    completions = rows.completion.tolist()
    if pretraining == "control":  # each prompt gets another example's target: same text, no link to the state
        completions = control_targets(completions, seed)
    dataset = answer_dataset(processor, pretraining_examples(rows, completions), STRATEGY_SYSTEM_PROMPT)
    if rehearse:
        perception = stage_config(params("perception"), model["tiny_path"], pool_seed,
                                  params("synthetic")["backgrounds"], params("screens")["shared_screenshots"])
        frames = render_pool(perception, 0, p["rehearsal_frames"])  # the first of the base's own training frames
        dataset = with_images(dataset, rehearsal_rows(processor, frames, research=p["rehearsal_prompt"] == "research"))
    summary = train(cfg, dataset, eval_dataset=val_dataset)
write_json(f"metrics/{name}.json", {"arm": arm, "seed": seed, "pretraining": pretraining or "none",
                                    **{k: v for k, v in summary.items() if k != "config"}})
log("pretrain").info("%s: %d steps, loss %s -> %s, val loss %s -> %s", name, summary["steps"], summary["first_loss"],
                     summary["final_loss"], summary["first_val_loss"], summary["final_val_loss"])
