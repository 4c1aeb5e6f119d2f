"""Seconds per perception-pretraining step: the short prompt, the research prompt run plainly, and the research prompt
with its system text shared across the batch (chimera.training.prefix.shared_prefix_loss).

    python bench/bench_perception_step.py            # needs models/tiny-qwen3vl (dvc repro build_tiny_model)
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.training.perception import (HUD_VIEW, PerceptionConfig, collate, encode, perception_target,  # noqa: E402
                                         render_pool, shared_prefix_length, shared_prefix_loss)
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402
from chimera.vlm.views import fit_processor  # noqa: E402

torch.manual_seed(0)
cfg = PerceptionConfig(base_model="models/tiny-qwen3vl", output_dir="-", workers=2, screenshots_dir="data/raw/screenshots",
                       backgrounds=["t2_chimera_gameplay_rifle.png"])
model, processor = load_model(ModelConfig(name=cfg.base_model), device="cpu", for_training=True)
fit_processor(processor, HUD_VIEW)
pool = render_pool(cfg, 0, 64)
targets = [perception_target(state) for _, state in pool]
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
for name, research, shared in (("short prompt", False, False), ("research prompt, plain", True, False),
                               ("research prompt, shared prefix", True, True)):
    seconds = []
    for step in range(10):
        rows = range(step * 6 % 56, step * 6 % 56 + 8)
        t0 = time.perf_counter()
        batch = collate([encode(processor, pool[i][0], targets[i], research) for i in rows], processor.tokenizer.pad_token_id)
        loss = shared_prefix_loss(model, batch, shared_prefix_length(batch)) if shared else model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - t0)
    print(f"{name}: {sum(seconds[2:]) / 8:.3f} s/step (batch 8, {batch['input_ids'].shape[1]} tokens per row, "
          f"mean of steps 3-10)")
