"""Does torch.compile speed up the tiny model's decoding on CPU? B at seed 0, constrained, batch 8, one thread: the
first batch of 8 eval frames (compilation included) and the next 16 frames, eager against compiled.

    python bench/explore_compile_decode.py none      # eager
    python bench/explore_compile_decode.py layers    # each decoder layer compiled (dynamic shapes)
    python bench/explore_compile_decode.py lm        # the whole language model compiled

Measured 2026-12-05 (BENCHMARKS.md): no mode is faster; the answers are the same. Not taken.
"""

import hashlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import read_parquet  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402

mode = sys.argv[1] if len(sys.argv) > 1 else "none"
torch.set_num_threads(1)
path = "models/sft/perception-100-0/final_model/merged_16bit"
splits = read_parquet("data/labeled/splits.parquet")
rows = splits[(splits.split == "eval") & (splits.source == "synthetic")].head(24)
frames = list(zip(rows.id, rows.path))
model, processor = load_model(ModelConfig(name=path))
if mode == "layers":
    layers = model.model.language_model.layers
    for i, layer in enumerate(layers):
        layers[i] = torch.compile(layer, dynamic=True)
elif mode == "lm":
    model.model.language_model = torch.compile(model.model.language_model, dynamic=True)
backend = LocalBackend(model, processor, path, batch_size=8, constrained=True)
t0 = time.perf_counter()
first = backend.analyze(frames[:8])
t1 = time.perf_counter()
rest = backend.analyze(frames[8:])
t2 = time.perf_counter()
print(f"{mode}: first batch {t1 - t0:.2f} s (compilation included), next 16 frames {t2 - t1:.2f} s, "
      f"{sum(p.output_tokens for p in rest)} tokens; answers sha256 "
      f"{hashlib.sha256(chr(0).join(p.raw_text for p in first + rest).encode()).hexdigest()[:12]}")
