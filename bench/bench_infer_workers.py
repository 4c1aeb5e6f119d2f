"""Wall time of the infer stage's decoding on the pipeline's eval frames: one process with torch's two threads, one
process with one thread (what the stage does when too few frames are left to start workers), and `infer.workers`
one-thread processes (chimera.vlm.inference.predict_in_workers), each into a fresh cache; and whether they give the
same answers.

    python bench/bench_infer_workers.py                                   # B at seed 0, 48 frames
    python bench/bench_infer_workers.py --model models/perception --frames 96 --workers 2
    python bench/bench_infer_workers.py --model models/tiny-qwen3vl --free --max-new-tokens 420 --frames 16 32 48
                                        # any model: free decoding of a random one runs every answer to its bound
"""

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import load_params, read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.inference import model_fingerprint, predict_in_workers, run_inference  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--model", default="models/sft/perception-100-0/final_model/merged_16bit")
parser.add_argument("--frames", type=int, nargs="+", default=[48])
parser.add_argument("--workers", type=int, default=2)
parser.add_argument("--free", action="store_true", help="decode without the schema (the stage's constrained: false)")
parser.add_argument("--max-new-tokens", type=int, help="the answer's token bound (default: infer.max_new_tokens)")
args = parser.parse_args()

p = load_params("params.yaml")
config = ModelConfig.from_params(p["model"], name=args.model)
splits = read_parquet("data/labeled/splits.parquet")
kwargs = {"batch_size": p["infer"]["batch_size"], "max_new_tokens": args.max_new_tokens or p["infer"]["max_new_tokens"],
          "constrained": not args.free}
model, processor = load_model(config)
model_id = model_fingerprint(args.model)
two_threads = torch.get_num_threads()
for n_frames in args.frames:
    frames = list(splits[splits.split == "eval"].head(n_frames)[["id", "path"]].itertuples(index=False, name=None))
    answers = {}
    for mode, workers in ((f"1 process, {two_threads} threads", 1), ("1 process, 1 thread", 1),
                          (f"{args.workers} one-thread workers", args.workers)):
        torch.set_num_threads(1 if "1 thread" in mode else two_threads)
        with tempfile.TemporaryDirectory() as tmp:
            backend, settings = LocalBackend(model, processor, "bench", **kwargs), {"workers": workers}
            start = time.perf_counter()
            if workers > 1:
                predict_in_workers(asdict(config), "bench", [(kwargs, frames)], workers, model_id, settings,
                                   Path(tmp) / "cache")
            run_inference(backend, frames, Path(tmp) / "out", model_id, settings=settings, cache_dir=Path(tmp) / "cache")
            seconds = time.perf_counter() - start
            answers[mode] = {i: r["raw_text"] for i, r in load_records(Path(tmp) / "out").items()}
        print(f"{len(frames)} frames, {mode}: {seconds:.1f} s ({seconds / len(frames):.3f} s/frame, model loading in "
              "the workers included)", flush=True)
    first, *others = answers.values()
    print(f"{len(frames)} frames: identical answers in every mode: "
          f"{sum(all(o[i] == first[i] for o in others) for i in first)} of {len(frames)}", flush=True)
