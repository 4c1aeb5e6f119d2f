"""Stage infer: one model of the matrix over the evaluation frames -> data/predictions/<model>/, decoded as
infer.constrained says; with infer.unconstrained_too the same frames decoded freely go to
data/predictions/<model>/unconstrained/ (a model's own JSON discipline is part of what the research compares).

Resumable: finished frames live in .cache/predictions/<run_key>/, keyed by weights, prompt, decoding settings
and pixel budget, so a crash or a `dvc repro` that wipes the output loses nothing, and any change reruns all.
"""

from _common import log, params

import sys

import torch
from tqdm import tqdm

from chimera.io import PREDICTIONS_CACHE, read_parquet, set_max_image_pixels, write_json
from chimera.vlm.backends import LocalBackend
from chimera.vlm.inference import model_fingerprint, run_inference
from chimera.vlm.models import ModelConfig, load_model

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

name = sys.argv[1]
p, mp = params("infer"), params("model")
torch.manual_seed(params()["seed"])
path = p["models"][name]["path"]
config = ModelConfig(**{**{k: v for k, v in mp.items() if k in ModelConfig.__dataclass_fields__}, "name": path})
model, processor = load_model(config)
splits = read_parquet("data/labeled/splits.parquet")
frames = splits[splits.split == p["split"]]
runs = [(p["constrained"], f"data/predictions/{name}", f"data/predictions/{name}.parquet")]
if p["unconstrained_too"] and p["constrained"]:
    runs.append((False, f"data/predictions/{name}/unconstrained", None))
for constrained, out, table in runs:
    backend = LocalBackend(model, processor, name, p["batch_size"], p["max_new_tokens"], constrained=constrained)
    with tqdm(total=len(frames), desc=f"infer {name}{'' if constrained else ' (unconstrained)'}", unit="frame") as bar:
        counts = run_inference(backend, list(zip(frames.id, frames.path)), out, model_fingerprint(path), table,
                               progress=bar.update, settings={"attn_implementation": config.attn_implementation},
                               cache_dir=PREDICTIONS_CACHE)
    write_json(f"{out}/_run.json", counts)
log("infer").info("%s: %s", name, counts)
if counts["total"] and counts["failed"] == counts["total"]:  # docs/errors.md: non-zero when nothing usable came out
    raise SystemExit(f"infer {name}: every frame failed; see the errors in data/predictions/{name}/")
