"""GRPO settings on the pipeline's own SFT output (the grpo stage's data and trainer, outside DVC): whether a run
moves its reward. Prints the weighted reward and the policy's entropy as means over consecutive blocks of steps,
and the report's three verdicts: the first/last reward windows, the line through every step, the same prompts.

    python bench/bench_grpo.py --steps 60 --lr 2e-4 --temperature 0.7             # E after B, seed 0
    python bench/bench_grpo.py --steps 30 --lr 5e-4 --temperature 1.0 --free      # sampling without the schema
    python bench/bench_grpo.py --steps 150 --block 30 --seed 1                    # five times the stage's steps
    python bench/bench_grpo.py --steps 10 --forced-in-loss       # train on the tokens the schema forced too (as before)
    python bench/bench_grpo.py --steps 10 --over-allowed         # score tokens by the model renormalized over the schema
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from transformers import TrainerCallback  # noqa: E402

from chimera.evaluation.report import reward_change, reward_trend, signed_interval  # noqa: E402
from chimera.io import load_params, read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.training.grpo import GRPORunConfig, grpo_dataset, train_grpo  # noqa: E402
from chimera.training.settings import lora_settings, model_settings  # noqa: E402
from chimera.vlm.views import load_view  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--base", default="models/sft/perception-100-0/final_model/merged_16bit")
parser.add_argument("--steps", type=int, default=30)
parser.add_argument("--lr", type=float, default=2e-4)
parser.add_argument("--temperature", type=float, default=0.7)
parser.add_argument("--batch-size", type=int, default=16, help="completions per step")
parser.add_argument("--examples", type=int, default=32)
parser.add_argument("--block", type=int, default=10, help="steps per printed mean")
parser.add_argument("--iterations", type=int, default=1, help="optimizer steps on each batch of samples (mu)")
parser.add_argument("--free", action="store_true", help="sample without the decoding schema")
parser.add_argument("--forced-in-loss", action="store_true",
                    help="keep the tokens the schema forced in the loss (grpo.forced_tokens_in_loss: true)")
parser.add_argument("--over-allowed", action="store_true",
                    help="score each token over the tokens the schema allowed (grpo.logprobs_over_allowed: true)")
parser.add_argument("--seed", type=int, default=0, help="the run's seed: LoRA init, prompt order, sampling")
args = parser.parse_args()

p = load_params("params.yaml")
splits = read_parquet("data/labeled/splits.parquet")
labels = load_records("data/labeled/labels")
rows = splits[splits.split == "train"].sample(frac=1.0, random_state=0).head(args.examples)
dataset = grpo_dataset([(r.path, labels[r.id]["analysis"], labels[r.id].get("p_win")) for r in rows.itertuples()],
                       load_view(args.base))
history = []


update_norms = []  # the L2 norm of each optimizer step's change to the trainable weights


class Keep(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        history.append(logs or {})

    # Adam divides each weight's step by its gradient's running scale, so a loss scaled by a constant (dapo's count of
    # tokens in the loss) moves the weights as far; the gradient norm trl logs is before that division
    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        after = dict(model.named_parameters())
        update_norms.append(sum(float((after[n].detach() - w).pow(2).sum()) for n, w in self.before.items()) ** 0.5)


with tempfile.TemporaryDirectory() as out:
    cfg = GRPORunConfig(base_model=args.base, output_dir=out, max_steps=args.steps, learning_rate=args.lr,
                        per_device_train_batch_size=args.batch_size, num_generations=p["grpo"]["num_generations"],
                        max_completion_length=p["grpo"]["max_completion_length"], temperature=args.temperature,
                        reward_weights=p["grpo"]["reward_weights"], constrained=not args.free, merge=False, seed=args.seed,
                        num_iterations=args.iterations, forced_tokens_in_loss=args.forced_in_loss,
                        logprobs_over_allowed=args.over_allowed,
                        **{**lora_settings(p["train"]), "lora_dropout": 0.0}, **model_settings(p["model"]))
    summary = train_grpo(cfg, dataset, callbacks=[Keep()])
steps = [h for h in history if "reward" in h]
for start in range(0, len(steps), args.block):
    block = steps[start:start + args.block]
    means = {key: sum(h.get(key, float("nan")) for h in block) / len(block) for key in ("reward", "entropy", "grad_norm")}
    print(f"steps {start + 1}-{start + len(block)}: reward {means['reward']:.3f}, entropy {means['entropy']:.2f}, "
          f"gradient norm {means['grad_norm']:.3f}, "
          f"update norm {sum(update_norms[start:start + args.block]) / len(block):.4f}")
change = reward_change(summary["reward_per_step"], summary["reward_windows"]["window"])  # the report's verdict
print(f"{summary['seconds_per_step']:.2f} s/step; free tokens {summary['free_token_fraction']}; windows {json.dumps(summary['reward_windows'])}; reward change "
      f"{signed_interval(change['diff'], change['ci'])} ({change['verdict']})")
trend = reward_trend(summary["reward_per_step"])
if trend["ci"]:
    print(f"along every step (least-squares line): rise {signed_interval(trend['rise'], trend['ci'])} "
          f"({trend['verdict']})")
paired = summary["reward_paired"]
print(f"paired over {paired['prompts']} prompts (last visit minus first): " + ", ".join(
    f"{k} " + signed_interval(v["change"], v["ci"])
    for k, v in paired.items() if isinstance(v, dict) and v["change"] is not None))
