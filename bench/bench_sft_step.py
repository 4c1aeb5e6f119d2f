"""Seconds per screenshot-SFT step (forward + backward), trl's own loss against the shared-prefix loss
(chimera.training.sft.shared_prefix_trainer), on the pipeline's base and train frames; and the loss and gradients
of both on the same batch, which must agree.

    python bench/bench_sft_step.py                   # needs models/perception and data/labeled (dvc repro split_screens)
    python bench/bench_sft_step.py --base models/tiny-qwen3vl --batch 8 --repeats 5
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from trl import SFTTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.training.sft import SFTRunConfig, load_for_training, make_trainer, screen_dataset  # noqa: E402
from chimera.vlm.views import load_view  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--base", default="models/perception")
parser.add_argument("--batch", type=int, default=4)
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()

splits, labels = read_parquet("data/labeled/splits.parquet"), load_records("data/labeled/labels")
train = splits[splits.split == "train"].head(args.batch)
dataset = screen_dataset([(r.path, labels[r.id]["analysis"]) for r in train.itertuples()], load_view(args.base))
cfg = SFTRunConfig(base_model=args.base, output_dir="/tmp/bench-sft-step", per_device_train_batch_size=args.batch,
                   modules_to_save=["lm_head"], lora_dropout=0.0)
torch.manual_seed(0)
model, processor = load_for_training(cfg)
trainer = make_trainer(cfg, model, processor, dataset)
batch = next(iter(trainer.get_train_dataloader()))
trainer.model.train()


def step(compute) -> tuple[float, dict]:
    trainer.model.zero_grad()
    loss = compute(trainer, trainer.model, dict(batch))
    loss.backward()
    return loss.item(), {n: p.grad for n, p in trainer.model.named_parameters() if p.grad is not None}


results = {}
for name, compute in (("trl", SFTTrainer.compute_loss), ("shared prefix", type(trainer).compute_loss)):
    loss, grads = step(compute)  # warm-up, and the values compared below
    start = time.perf_counter()
    for _ in range(args.repeats):
        step(compute)
    results[name] = (loss, {k: g.clone() for k, g in grads.items()}, (time.perf_counter() - start) / args.repeats)
worst = max((results["trl"][1][k] - results["shared prefix"][1][k]).abs().max().item() for k in results["trl"][1])
print(f"base {args.base}, batch {args.batch} x {batch['input_ids'].shape[1]} tokens, {torch.get_num_threads()} threads")
for name, (loss, _, seconds) in results.items():
    print(f"{name:14s} loss {loss:.6f}  {seconds:.3f} s/step (forward + backward, mean of {args.repeats})")
print(f"largest gradient difference {worst:.2e}")
