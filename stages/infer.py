"""Stage infer: one model over the evaluation frames -> data/predictions/<model>/, decoded as infer.constrained
says; with infer.unconstrained_too the first infer.unconstrained_frames of them decoded freely go to
data/predictions/<model>/unconstrained/ (a model's own JSON discipline is part of what the research compares).

    python stages/infer.py A_zeroshot models/perception     # what stage infer@A_zeroshot runs
    python stages/infer.py sft/perception-100-0 models/sft/perception-100-0/final_model/merged_16bit
                                                            # a cell of the SFT grid (infer_sft@100-perception-0)
The model folder comes on the command line (dvc.yaml holds it), so a stage reads no other model's params.

Resumable: finished frames live in .cache/predictions/<run_key>/, keyed by weights, prompt, decoding settings
and pixel budget, so a crash or a `dvc repro` that wipes the output loses nothing, and any change reruns all.
"""

from _common import log, params

import sys
from dataclasses import asdict

import torch
from tqdm import tqdm

from chimera.io import PREDICTIONS_CACHE, read_parquet, set_max_image_pixels, write_json
from chimera.vlm.backends import LocalBackend
from chimera.vlm.inference import (frames_left, model_fingerprint, predict_in_workers, run_inference,
                                   workers_worth_starting)
from chimera.vlm.models import ModelConfig, load_model

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

if len(sys.argv) < 3:
    raise SystemExit("usage: python stages/infer.py NAME MODEL_FOLDER (as dvc.yaml's infer stages run it)")
name, path = sys.argv[1], sys.argv[2]
p, mp = params("infer"), params("model")
torch.manual_seed(params()["seed"])
config = ModelConfig.from_params(mp, name=path)
model, processor = load_model(config)
splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == p["split"]]
runs = [(p["constrained"], f"data/predictions/{name}", f"data/predictions/{name}.parquet", frames)]
if p["unconstrained_too"] and p["constrained"]:
    runs.append((False, f"data/predictions/{name}/unconstrained", None, frames.head(p["unconstrained_frames"])))
model_id = model_fingerprint(path)
# infer.workers > 1: that many one-thread processes fill the resume cache first (faster on a CPU; 1 on a GPU), when
# enough frames are left to pay for their starts
settings = {"attn_implementation": config.attn_implementation, "workers": p["workers"]}


def backend_kwargs(constrained: bool) -> dict:
    return {"batch_size": p["batch_size"], "max_new_tokens": p["max_new_tokens"], "constrained": constrained}


decodes = [(constrained, LocalBackend(model, processor, name, **backend_kwargs(constrained)), out, table,
            list(zip(todo.id, todo.path))) for constrained, out, table, todo in runs]
left = [frames_left(backend, frames, model_id, settings, PREDICTIONS_CACHE) for _, backend, _, _, frames in decodes]
workers = workers_worth_starting(sum(map(len, left)), p["workers"])
if workers > 1:  # the workers decode what is left of every run (one start each), then each run below finds it cached
    work = [(backend_kwargs(constrained), todo) for (constrained, *_), todo in zip(decodes, left)]
    with tqdm(total=sum(map(len, left)), desc=f"infer {name} ({workers} workers)", unit="frame") as bar:
        predict_in_workers(asdict(config), name, work, workers, model_id, settings, PREDICTIONS_CACHE,
                           progress=bar.update)
elif p["workers"] > 1:  # too few frames left to pay for the workers' starts: one thread here, as a worker decodes
    torch.set_num_threads(1)
for constrained, backend, out, table, frames in decodes:
    with tqdm(total=len(frames), desc=f"infer {name}{'' if constrained else ' (unconstrained)'}", unit="frame") as bar:
        counts = run_inference(backend, frames, out, model_id, table, progress=bar.update, settings=settings,
                               cache_dir=PREDICTIONS_CACHE)
    write_json(f"{out}/_run.json", counts)
log("infer").info("%s: %s", name, counts)
if counts["total"] and counts["failed"] == counts["total"]:  # docs/errors.md: non-zero when nothing usable came out
    raise SystemExit(f"infer {name}: every frame failed; see the errors in data/predictions/{name}/")
