"""Benchmark: SFT and GRPO step time and peak memory, through the same trainers the pipeline runs.

    python bench/bench_training.py                          # tiny Qwen3-VL on this CPU
    python bench/bench_training.py --arch qwen3vl-8b        # Qwen3-VL-8B architecture on a GPU, bf16 and 4-bit
    python bench/bench_training.py --arch qwen3vl-8b-scaled # the 8B code path with small dims (CPU smoke run)

Random weights built from a config cost the same time and memory as the real checkpoint (same shapes, same
kernels), so the 8B figures need no download. The tokenizer and processor are the tiny model's (its token ids
fit inside the 8B vocabulary); the 8B config keeps the real vocabulary size (151,936), so embedding and
lm_head costs are real. Each measurement runs in a fresh process so peak memory is its own.

Memory: GPU = torch.cuda.max_memory_allocated (what the tensors needed; nvidia-smi shows more, the caching
allocator's reserve); CPU = the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Qwen3-VL-8B-Instruct's shapes (its config.json): the Qwen3-8B text tower and the 27-layer SigLIP-2 vision tower
QWEN3VL_8B = {
    "text": dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                 num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                 rope_scaling={"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True},
                 rope_theta=5_000_000.0, tie_word_embeddings=False),
    "vision": dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                   patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                   deepstack_visual_indexes=[8, 16, 24]),
}
# The same structure at toy size: exercises the 8B path (build from config, save, 4-bit load) on a CPU
QWEN3VL_8B_SCALED = {
    "text": {**QWEN3VL_8B["text"], "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
             "rope_scaling": {"rope_type": "default", "mrope_section": [16, 8, 8], "mrope_interleaved": True}},
    "vision": {**QWEN3VL_8B["vision"], "depth": 3, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2,
               "out_hidden_size": 256, "deepstack_visual_indexes": [0, 1, 2]},
}
ARCHES = {"qwen3vl-8b": QWEN3VL_8B, "qwen3vl-8b-scaled": QWEN3VL_8B_SCALED}


def build_model(arch: str, folder: Path) -> Path:
    """Save a random-weight model of `arch` with the tiny model's processor into `folder` (kept if already there,
    so the training and inference benchmarks can share one 17 GB build)."""
    if (folder / arch / "config.json").is_file() and (folder / arch / "bench_params.json").is_file():
        return folder / arch
    import torch
    from transformers import AutoTokenizer, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    from chimera.vlm.models import build_tiny_model

    tiny = build_tiny_model(folder / "tiny")
    if arch == "tiny":
        return tiny
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    shapes = ARCHES[arch]
    config = Qwen3VLConfig(text_config=shapes["text"], vision_config=shapes["vision"], tie_word_embeddings=False, **ids)
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config.pad_token_id = tokenizer.pad_token_id
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: 8.8B parameters are slow to initialise on a CPU
        model = Qwen3VLForConditionalGeneration(config).to(torch.bfloat16)
    out = folder / arch
    model.save_pretrained(out)
    for name in os.listdir(tiny):
        if not name.startswith(("model", "config", "generation_config")):
            (out / name).write_bytes((tiny / name).read_bytes())
    params = sum(p.numel() for p in model.parameters())
    del model
    (out / "bench_params.json").write_text(json.dumps({"parameters": params}))
    return out


def examples(folder: Path, n: int, width: int, height: int) -> list[tuple[str, dict]]:
    """n rendered frames with their exact labels (the same kind of data the SFT stage trains on)."""
    from chimera.labeling.truth import truth_label
    from chimera.screens.hud import Style, extras_dict, png_bytes, render_frame, sample_state

    out = []
    for seed in range(n):
        state, extras = sample_state(random.Random(seed))
        image, _ = render_frame(state, extras, Style(width=width, height=height, seed=seed))
        path = folder / f"frame{seed}.png"
        path.write_bytes(png_bytes(image))
        out.append((str(path), truth_label(str(seed), state.model_dump_json(), extras_dict(extras))["analysis"]))
    return out


def worker(args) -> dict:
    """One measurement in this process: SFT or GRPO, `steps` optimiser steps after one warm-up step."""
    import torch

    from chimera.training.grpo import GRPORunConfig, grpo_dataset, train_grpo
    from chimera.training.sft import SFTRunConfig, screen_dataset, train

    folder = Path(args.workdir)
    data = examples(folder, max(8, args.batch * 2), args.width, args.height)
    quant = None if args.quant == "none" else args.quant
    common = dict(base_model=args.model, max_steps=args.steps + 1, per_device_train_batch_size=args.batch,
                  max_pixels=args.max_pixels, min_pixels=min(65536, args.max_pixels), quantization=quant,
                  gradient_checkpointing=args.gradient_checkpointing, logging_steps=1, merge=False,
                  modules_to_save=["lm_head"] if args.arch == "tiny" else None)
    timings: list[float] = []

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):  # per-step wall time; the first (warm-up) step is dropped below
        def on_step_begin(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - self.t)

    if args.kind == "sft":
        cfg = SFTRunConfig(output_dir=str(folder / "sft-out"), save_steps=10**9, **common)
        summary = train(cfg, screen_dataset(data), callbacks=[StepTimer()])
    else:
        # trl counts completions in the batch: it must hold whole groups of `generations`
        common["per_device_train_batch_size"] = args.batch * args.generations
        cfg = GRPORunConfig(output_dir=str(folder / "grpo-out"), num_generations=args.generations,
                            max_completion_length=args.completion_tokens, **common)
        summary = train_grpo(cfg, grpo_dataset([(p, a, None) for p, a in data]), callbacks=[StepTimer()])
    steady = sorted(timings[1:]) or timings
    return {"kind": args.kind, "arch": args.arch, "quant": args.quant, "batch": common["per_device_train_batch_size"],
            "image": f"{args.width}x{args.height} (max_pixels {args.max_pixels})",
            "steps_timed": len(steady), "median_step_s": round(steady[len(steady) // 2], 3),
            "peak_memory_mb": summary["peak_memory_mb"],
            "peak_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20, 1) if torch.cuda.is_available() else None,
            "trainable_params": summary.get("trainable_params"),
            "generations": args.generations if args.kind == "grpo" else None,
            "completion_tokens": args.completion_tokens if args.kind == "grpo" else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="tiny", choices=["tiny", *ARCHES])
    ap.add_argument("--quant", default=None, help="none | 4bit | both (default: none on CPU, both on a GPU)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    ap.add_argument("--batch", type=int, default=None, help="per-device batch (default 2 tiny, 1 for the 8B)")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--max-pixels", type=int, default=None, help="image budget (default 448x252 tiny, 1280x720 8B)")
    ap.add_argument("--generations", type=int, default=4, help="GRPO completions per prompt")
    ap.add_argument("--completion-tokens", type=int, default=None, help="GRPO max completion (64 tiny, 384 8B)")
    ap.add_argument("--gradient-checkpointing", action="store_true", default=None)
    ap.add_argument("--only", choices=["sft", "grpo"], default=None)
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    ap.add_argument("--model-dir", default=None, help="build the model here and keep it (reused when present)")
    # internal: one measurement in a child process
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    big = args.arch == "qwen3vl-8b"
    args.batch = args.batch or (1 if big else 2)
    args.width, args.height = args.width or (1280 if big else 640), args.height or (720 if big else 360)
    args.max_pixels = args.max_pixels or (1280 * 720 if big else 448 * 252)
    args.completion_tokens = args.completion_tokens or (384 if big else 64)
    if args.gradient_checkpointing is None:
        args.gradient_checkpointing = big
    if args.kind:  # child
        print("RESULT " + json.dumps(worker(args)))
        return

    import torch

    on_gpu = torch.cuda.is_available()
    if big and not on_gpu:
        raise SystemExit("--arch qwen3vl-8b needs a CUDA GPU (about 20 GB in bf16); use --arch qwen3vl-8b-scaled "
                         "to smoke-test the same path on a CPU")
    quants = {"none": ["none"], "4bit": ["4bit"], "both": ["none", "4bit"], None: ["none", "4bit"] if on_gpu else ["none"]}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(args.arch, Path(args.model_dir or tmp))
        for quant in quants[args.quant]:
            for kind in [args.only] if args.only else ["sft", "grpo"]:
                cmd = [sys.executable, __file__, "--kind", kind, "--model", str(model), "--workdir", tmp,
                       "--arch", args.arch, "--quant", quant, "--steps", str(args.steps), "--batch", str(args.batch),
                       "--width", str(args.width), "--height", str(args.height), "--max-pixels", str(args.max_pixels),
                       "--generations", str(args.generations), "--completion-tokens", str(args.completion_tokens)]
                if args.gradient_checkpointing:
                    cmd.append("--gradient-checkpointing")
                done = subprocess.run(cmd, capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode or not lines:
                    results.append({"kind": kind, "arch": args.arch, "quant": quant,
                                    "error": (done.stderr or done.stdout)[-1500:]})
                else:
                    results.append(json.loads(lines[-1][7:]))
                print(json.dumps(results[-1]), flush=True)
                if args.out:  # after every measurement, so a run stopped at a time limit keeps what it measured
                    Path(args.out).write_text(json.dumps({"arch": args.arch, "results": results}, indent=2))
        params = json.loads((model / "bench_params.json").read_text())["parameters"] if (model / "bench_params.json").exists() else None
    device = torch.cuda.get_device_name(0) if on_gpu else f"CPU ({platform.machine()}, {len(os.sched_getaffinity(0))} cores)"
    print(json.dumps({"device": device, "parameters": params, "results": results}, indent=2))
    print(f"\n{device}; {args.arch}" + (f" ({params / 1e9:.2f}B parameters)" if params else ""))
    print("| trainer | weights | batch (sequences) | image | s/step (median) | peak memory MB | trainable params |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['kind']} | {r['quant']} | failed: {r['error'].strip().splitlines()[-1][:120]} |")
            continue
        extra = f", {r['generations']}x{r['completion_tokens']} tok" if r["kind"] == "grpo" else ""
        weights = r["quant"] if r["quant"] != "none" else "bf16" if on_gpu else "fp32"
        print(f"| {r['kind']}{extra} | {weights} "
              f"| {r['batch']} | {r['image']} | {r['median_step_s']} | {r['peak_memory_mb']} | {r['trainable_params']:,} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": device, "parameters": params, "results": results}, indent=2))


if __name__ == "__main__":
    main()
