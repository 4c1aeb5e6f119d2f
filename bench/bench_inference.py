"""Benchmark: inference through the pipeline's LocalBackend: prefill time, decode speed, seconds per frame and
peak memory, per weights (bf16/fp32, 4-bit), batch size and decoder (free, schema-constrained with llguidance).

    python bench/bench_inference.py                          # tiny Qwen3-VL on this CPU
    python bench/bench_inference.py --arch qwen3vl-8b        # Qwen3-VL-8B architecture on a GPU, bf16 and 4-bit
    python bench/bench_inference.py --arch qwen3vl-8b-scaled # the 8B code path at toy width (CPU smoke run)

The model is built from a config with random weights (bench_training.build_model; same shapes and kernels as the
real checkpoint). Random weights never write the end of the JSON, so every answer runs to `--tokens` new tokens:
the figures are per generated token and per frame at that length. A real answer is about 250-400 tokens.
Prefill = a generate() of one new token (image encoding + prompt); decode speed = the rest of a full generate.
Memory: GPU = torch.cuda.max_memory_allocated per configuration; CPU = the process's peak RSS (cumulative).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def frames(n: int, width: int, height: int):
    """n rendered HUD frames (PIL images) at the size the benchmark feeds."""
    import random

    from chimera.screens.hud import Style, render_frame, sample_state

    return [render_frame(*sample_state(random.Random(seed)), Style(width=width, height=height, seed=seed))[0]
            for seed in range(n)]


def timed(fn):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def measure(backend, images, batch: int, tokens: int, repeats: int) -> dict:
    """Median over `repeats` batches: prefill seconds, full-generate seconds, output tokens per sequence."""
    import torch

    from chimera.prompts import chat_messages

    messages = [chat_messages(backend.view.images(image)) for image in images[:batch]]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    # warm-up with a full-length generate: on the H200 the first long generations of a process ran at half speed
    # (15 against 33 tokens/s, whichever decoder came first); a 1-token warm-up did not cover it
    backend.max_new_tokens = tokens
    backend.generate(messages)
    backend.max_new_tokens = 1
    prefill = sorted(timed(lambda: backend.generate(messages))[1] for _ in range(repeats))[repeats // 2]
    backend.max_new_tokens = tokens
    runs = [timed(lambda: backend.generate(messages)) for _ in range(repeats)]
    outputs, seconds = sorted(runs, key=lambda r: r[1])[repeats // 2]
    new_tokens = sum(n_out for _, _, n_out in outputs) / batch
    decode_s = max(seconds - prefill, 1e-9)
    return {"batch": batch, "input_tokens": outputs[0][1], "output_tokens": round(new_tokens, 1),
            "prefill_s": round(prefill, 3), "generate_s": round(seconds, 3),
            "s_per_frame": round(seconds / batch, 3),
            "decode_tok_s_per_seq": round((new_tokens - 1) / decode_s, 1),
            "decode_tok_s_total": round(batch * (new_tokens - 1) / decode_s, 1),
            "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available()
            else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="tiny", choices=["tiny", "qwen3vl-8b", "qwen3vl-8b-scaled"])
    ap.add_argument("--quant", default=None, help="none | 4bit | both (default: none on CPU, both on a GPU)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,4)")
    ap.add_argument("--tokens", type=int, default=None, help="new tokens per answer (default 64 tiny, 256 8B)")
    ap.add_argument("--decoders", default="free,constrained")
    ap.add_argument("--repeats", type=int, default=3, help="timed generate calls per configuration (median)")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--max-pixels", type=int, default=None, help="image budget (default 448x252 tiny, 1280x720 8B)")
    ap.add_argument("--model-dir", default=None, help="where the model is built and kept (reused when present)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here (rewritten after each row)")
    args = ap.parse_args()

    import torch

    from bench_training import build_model
    from chimera.vlm.backends import LocalBackend
    from chimera.vlm.models import ModelConfig, load_model

    big = args.arch == "qwen3vl-8b"
    on_gpu = torch.cuda.is_available()
    if big and not on_gpu:
        raise SystemExit("--arch qwen3vl-8b needs a CUDA GPU (about 18 GB in bf16); use --arch qwen3vl-8b-scaled "
                         "to smoke-test the same path on a CPU")
    batches = [int(b) for b in (args.batches or "1,4").split(",")]
    tokens = args.tokens or (256 if big else 64)
    width, height = args.width or (1280 if big else 640), args.height or (720 if big else 360)
    max_pixels = args.max_pixels or (1280 * 720 if big else 448 * 252)
    quants = {"none": ["none"], "4bit": ["4bit"], "both": ["none", "4bit"],
              None: ["none", "4bit"] if on_gpu else ["none"]}[args.quant]
    device = torch.cuda.get_device_name(0) if on_gpu else f"CPU ({platform.machine()}, {len(os.sched_getaffinity(0))} cores)"
    images = frames(max(batches), width, height)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(args.arch, Path(args.model_dir or tmp))
        for quant in quants:
            model, processor = load_model(ModelConfig(name=str(path), quantization=None if quant == "none" else quant,
                                                      min_pixels=min(65536, max_pixels), max_pixels=max_pixels))
            for decoder in args.decoders.split(","):
                backend = LocalBackend(model, processor, args.arch, constrained=decoder == "constrained")
                for batch in batches:
                    row = {"arch": args.arch, "weights": quant if quant != "none" else "bf16" if on_gpu else "fp32",
                           "decoder": decoder, **measure(backend, images, batch, tokens, args.repeats)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
                    if args.out:
                        Path(args.out).write_text(json.dumps({"device": device, "image": f"{width}x{height}",
                                                              "results": results}, indent=2))
            del model, backend
            if on_gpu:
                torch.cuda.empty_cache()
    print(f"\n{device}; {args.arch}; image {width}x{height} (max_pixels {max_pixels}); {tokens} new tokens per answer")
    print("| weights | decoder | batch | input tokens | prefill s | s/frame | decode tok/s per sequence | "
          "decode tok/s total | peak memory MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['weights']} | {r['decoder']} | {r['batch']} | {r['input_tokens']} | {r['prefill_s']} | "
              f"{r['s_per_frame']} | {r['decode_tok_s_per_seq']} | {r['decode_tok_s_total']} | {r['peak_memory_mb']} |")


if __name__ == "__main__":
    main()
