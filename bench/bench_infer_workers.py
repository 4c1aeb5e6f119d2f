"""Wall time of the infer stage's decoding on the pipeline's eval frames: one process with torch's two threads
against `infer.workers` one-thread processes (chimera.vlm.inference.predict_in_workers), each into a fresh cache;
and whether the two give the same answers.

    python bench/bench_infer_workers.py                                   # B at seed 0, 48 frames
    python bench/bench_infer_workers.py --model models/perception --frames 96 --workers 2
"""

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import load_params, read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.vlm.backends import LocalBackend  # noqa: E402
from chimera.vlm.inference import model_fingerprint, predict_in_workers, run_inference  # noqa: E402
from chimera.vlm.models import ModelConfig, load_model  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--model", default="models/sft/perception-100-0/final_model/merged_16bit")
parser.add_argument("--frames", type=int, default=48)
parser.add_argument("--workers", type=int, default=2)
args = parser.parse_args()

p = load_params("params.yaml")
config = ModelConfig.from_params(p["model"], name=args.model)
splits = read_parquet("data/labeled/splits.parquet")
frames = list(splits[splits.split == "eval"].head(args.frames)[["id", "path"]].itertuples(index=False, name=None))
kwargs = {"batch_size": p["infer"]["batch_size"], "max_new_tokens": p["infer"]["max_new_tokens"], "constrained": True}
model, processor = load_model(config)
model_id = model_fingerprint(args.model)
answers = {}
for workers in (1, args.workers):
    with tempfile.TemporaryDirectory() as tmp:
        backend, settings = LocalBackend(model, processor, "bench", **kwargs), {"workers": workers}
        start = time.perf_counter()
        if workers > 1:
            predict_in_workers(asdict(config), "bench", [(kwargs, frames)], workers, model_id, settings,
                               Path(tmp) / "cache")
        run_inference(backend, frames, Path(tmp) / "out", model_id, settings=settings, cache_dir=Path(tmp) / "cache")
        seconds = time.perf_counter() - start
        answers[workers] = {i: r["raw_text"] for i, r in load_records(Path(tmp) / "out").items()}
    print(f"workers {workers}: {seconds:.1f} s for {len(frames)} frames ({seconds / len(frames):.3f} s/frame, "
          "model loading in the workers included)")
same = sum(answers[1][i] == answers[args.workers][i] for i in answers[1])
print(f"identical answers: {same} of {len(frames)}")
