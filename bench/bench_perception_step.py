"""Seconds per perception-pretraining step: the short prompt (and the same with the lm_head run on the answer's
positions alone: the same loss, not adopted, see BENCHMARKS.md "sixth round"), the research prompt run plainly, and the
research prompt with its system text shared across the batch (chimera.training.prefix.shared_prefix_loss).

    python bench/bench_perception_step.py            # needs models/tiny-qwen3vl (dvc repro build_tiny_model)
    python bench/bench_perception_step.py --patch-embed linear  # the patch embedding as one linear layer
                                                                # (perception.patch_embed_as_linear; off by default)
    python bench/bench_perception_step.py --batch 32    # rows per step: what a larger batch costs a step
    python bench/bench_perception_step.py --threads 1   # torch's intra-op threads: what running stages side by side
                                                        # on 2 cores could gain at most
    python bench/bench_perception_step.py --autocast bf16  # the forward under CPU bfloat16 autocast

Each row splits the step into preparing the batch (chat template, image processor, collate) and the model's work.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.training.perception import (HUD_VIEW, PerceptionConfig, collate, encode, perception_target,  # noqa: E402
                                         render_pool, shared_prefix_length, shared_prefix_loss)
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402
from chimera.vlm.views import fit_processor  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own choice)")
parser.add_argument("--patch-embed", choices=["linear", "conv"], default="conv",
                    help="the vision patch embedding as one linear layer (ModelConfig.patch_embed_as_linear) or as "
                         "transformers defines it (conv, the default of the stage)")
parser.add_argument("--batch", type=int, default=8, help="rows per step (perception.batch_size is 8)")
parser.add_argument("--autocast", choices=["bf16"], default=None,
                    help="run the forward pass under torch.autocast('cpu', bfloat16): what CPU bf16 kernels give")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
print(f"torch threads: {torch.get_num_threads()}")
torch.manual_seed(0)
cfg = PerceptionConfig(base_model="models/tiny-qwen3vl", output_dir="-", workers=2, screenshots_dir="data/raw/screenshots",
                       backgrounds=["t2_chimera_gameplay_rifle.png"])
model, processor = load_model(ModelConfig(name=cfg.base_model, patch_embed_as_linear=args.patch_embed == "linear"),
                              device="cpu", for_training=True)
fit_processor(processor, HUD_VIEW)
pool = render_pool(cfg, 0, max(64, 8 * args.batch))
targets = [perception_target(state) for _, state in pool]
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)


def answer_logits_loss(batch):
    """model(**batch).loss with logits from the first answer column on (logits_to_keep)."""
    labels = batch["labels"]
    first = int((labels != -100).any(0).nonzero()[0])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, logits_to_keep=labels.shape[1] - first + 1).logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, first:].reshape(-1), ignore_index=-100)


plain = lambda batch: model(**batch).loss  # noqa: E731
first = collate([encode(processor, pool[i][0], targets[i]) for i in range(8)], processor.tokenizer.pad_token_id)
with torch.no_grad():  # the same loss either way, on one batch
    print(f"loss on one batch: every logit {plain(first).item()!r}, answer logits only {answer_logits_loss(first).item()!r}")
for name, research, loss_of in (("short prompt", False, plain), ("short prompt, answer logits only", False,
                                                                 answer_logits_loss),
                                ("research prompt, plain", True, plain),
                                ("research prompt, shared prefix", True,
                                 lambda batch: shared_prefix_loss(model, batch, shared_prefix_length(batch)))):
    seconds, preparing = [], []
    for step in range(10):
        start = step * 6 % (len(pool) - args.batch)
        rows = range(start, start + args.batch)
        t0 = time.perf_counter()
        batch = collate([encode(processor, pool[i][0], targets[i], research) for i in rows], processor.tokenizer.pad_token_id)
        prepared = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
            loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - t0)
        preparing.append(prepared - t0)
    print(f"{name}: {sum(seconds[2:]) / 8:.3f} s/step, of which preparing the batch {sum(preparing[2:]) / 8:.3f} s "
          f"(batch {args.batch}, {batch['input_ids'].shape[1]} tokens per row, mean of steps 3-10); loss after its "
          f"last step {loss.item()!r}")
