"""What does strategy pretraining cost the base's reading? The stage's text pretraining (its data, prompts and
trainer) at other settings, outside DVC, then two checks that never touch the eval split:

- the strategy val loss (whole matches held out), what the pretraining is for;
- the reading check: the pretrained model answers the research prompt on frames the perception stage renders
  after its training pool (indices n_frames.., seed 0: never trained on), scored by the evaluation's value accuracy.

    python bench/explore_strategy_reading.py --steps 0                      # the base itself (the reference)
    python bench/explore_strategy_reading.py                                # the stage's setting (params.yaml)
    python bench/explore_strategy_reading.py --lr 5e-4 --no-lm-head         # gentler: LoRA only, lower lr
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT, pretraining_examples  # noqa: E402
from chimera.io import load_params, read_parquet  # noqa: E402
from chimera.training.perception import read_accuracy, rehearsal_rows, render_pool, stage_config  # noqa: E402
from chimera.training.settings import lora_settings, model_settings  # noqa: E402
from chimera.training.sft import SFTRunConfig, answer_dataset, train, with_images  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model, load_processor  # noqa: E402

p = load_params("params.yaml")
s = p["pretrain_strategy"]
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--steps", type=int, default=s["max_steps"], help="0: check the base itself")
parser.add_argument("--lr", type=float, default=s["learning_rate"])
parser.add_argument("--rank", type=int, help="LoRA rank (alpha 2x rank); default: params.yaml train")
parser.add_argument("--no-lm-head", action="store_true", help="LoRA only: lm_head stays the base's")
parser.add_argument("--frames", type=int, default=96, help="reading-check frames")
parser.add_argument("--rehearsal", type=int, default=s.get("rehearsal_frames", 0),
                    help="frames of the base's training pool mixed into the pretraining (reading rehearsal)")
parser.add_argument("--research-prompt", action="store_true", default=s.get("rehearsal_prompt") == "research",
                    help="rehearse under the research prompt (the base's answer) rather than the short reading prompt")
args = parser.parse_args()

base = p["perception"]["out"]
perception = stage_config(p["perception"], p["model"]["tiny_path"], p["seed"], p["synthetic"]["backgrounds"],
                          p["screens"]["shared_screenshots"])
rows = render_pool(perception, perception.n_frames, args.frames)  # after the training pool: never trained on
with tempfile.TemporaryDirectory() as out:
    model_path, line = base, "base"
    if args.steps:
        processor = load_processor(base)
        train_rows = read_parquet("data/processed/strategy/train.parquet").sample(frac=1.0, random_state=p["seed"]) \
            .head(s["max_examples"])
        val = read_parquet("data/processed/strategy/val.parquet").sample(frac=1.0, random_state=p["seed"]) \
            .head(s["max_val_examples"])
        lora = lora_settings(p["train"])  # the stage's, unless a rank is asked for
        if args.rank:
            lora |= {"lora_r": args.rank, "lora_alpha": 2 * args.rank}
        if args.no_lm_head:
            lora["modules_to_save"] = None
        cfg = SFTRunConfig(base_model=base, output_dir=out, max_steps=args.steps, learning_rate=args.lr,
                           per_device_train_batch_size=s["batch_size"], seed=p["seed"], eval_steps=s["eval_steps"],
                           **lora, **model_settings(p["model"]))
        start = time.perf_counter()
        dataset = answer_dataset(processor, pretraining_examples(train_rows), STRATEGY_SYSTEM_PROMPT)
        val_dataset = answer_dataset(processor, pretraining_examples(val), STRATEGY_SYSTEM_PROMPT)
        if args.rehearsal:  # the first frames of the base's own training pool; the val loss stays on the text
            dataset = with_images(dataset, rehearsal_rows(processor, render_pool(perception, 0, args.rehearsal),
                                                              args.research_prompt))
            val_dataset = with_images(val_dataset, [])  # one collator for both: trl's vision one
        summary = train(cfg, dataset, eval_dataset=val_dataset)
        model_path = str(Path(out) / "final_model" / "merged_16bit")
        line = (f"steps {args.steps}, lr {args.lr:g}, rank {lora['lora_r']}, lm_head {'frozen' if args.no_lm_head else 'trained'},"
                f" rehearsal {args.rehearsal} frames{' (research prompt)' if args.research_prompt else ''}:"
                f" strategy val loss {summary['first_val_loss']:.3f} -> {summary['final_val_loss']:.3f},"
                f" {time.perf_counter() - start:.0f} s")
    model, processor = load_model(ModelConfig(name=model_path))
    reading = read_accuracy(model, processor, rows, max_new_tokens=perception.max_new_tokens)
    short = read_accuracy(model, processor, rows, max_new_tokens=perception.max_new_tokens, research=False)


def figures(reading: dict) -> str:
    fields = reading["fields"]
    return (f"value accuracy {100 * reading['value_accuracy']:.1f}%, schema-valid {100 * reading['schema_valid']:.0f}%,"
            f" money {100 * fields.get('player_money', 0):.0f}%, health {100 * fields.get('player_health', 0):.0f}%,"
            f" armor {100 * fields.get('player_armor', 0):.0f}%")


print(f"{line}; reading on {len(rows)} held-out frames, the research prompt: {figures(reading)}; the short reading "
      f"prompt: {figures(short)}")
