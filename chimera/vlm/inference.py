"""Run a backend over frames: one prediction JSON per frame id + a Parquet table; resumable.

A frame's prediction is keyed by everything that changes it (`run_key`: the model's weights, the prompt and
schema, the decoding settings and the pixel budget), so an interrupted run continues where it stopped and
any change predicts everything again. Finished predictions are kept in a cache folder outside the DVC
output (`.cache/predictions/<run_key>/`), so `dvc repro` may wipe the output and still lose nothing.
A failed frame (unreadable image, server error) is written to the output for the report but never counts as
done: a rerun retries it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from chimera.io import read_json
from chimera.prompts import PROMPT_HASH
from chimera.records import write_records


def model_fingerprint(path_or_name: str) -> str:
    """Hash of the weights for a local model folder; the name itself for a hub id or remote model; a redirect folder
    (chimera.vlm.models.BASE_REDIRECT) is the model it names."""
    from chimera.vlm.models import BASE_REDIRECT

    folder = Path(path_or_name)
    if (folder / BASE_REDIRECT).is_file():
        return model_fingerprint(json.loads((folder / BASE_REDIRECT).read_text())["name"])
    if not folder.is_dir():
        return path_or_name
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.safetensors")):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"{folder.name}@{h.hexdigest()[:12]}"


def run_key(model_id: str, settings: dict | None = None) -> str:
    """Everything that changes a prediction: weights, prompt + schema, decoding settings, pixel budget."""
    payload = json.dumps({"model": model_id, "prompt": PROMPT_HASH, "settings": settings or {}}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _cache_of(backend, model_id: str, settings: dict | None, cache_dir, out_dir) -> tuple[str, Path]:
    """The run key of a backend's predictions and the folder that holds them."""
    key = run_key(model_id, {**getattr(backend, "settings", {}), **(settings or {})})
    return key, Path(cache_dir) / key if cache_dir is not None else Path(out_dir)


def _split_cached(frames: list[tuple[str, str]], cache: Path, key: str) -> tuple[list[dict], list[tuple[str, str]]]:
    """(the finished records of this run key, the frames still to predict); a failed record is never finished."""
    done, todo = [], []
    for image_id, path in frames:
        existing = cache / f"{image_id}.json"
        if existing.exists():
            record = read_json(existing)
            if record.get("run_key") == key and not record.get("failed"):
                done.append(record)
                continue
        todo.append((image_id, path))
    return done, todo


def frames_left(backend, frames: list[tuple[str, str]], model_id: str, settings: dict | None,
                cache_dir: str | Path) -> list[tuple[str, str]]:
    """The frames a `run_inference` with these arguments would predict: those not finished in the cache."""
    key, cache = _cache_of(backend, model_id, settings, cache_dir, None)
    return _split_cached(frames, cache, key)[1]


# Two workers' starts (their imports, their copies of the model: about 6 s) pay for themselves from about this many
# frames on (BENCHMARKS.md, eighteenth session): below it, the stage decodes in its own process.
MIN_FRAMES_FOR_WORKERS = 48


def workers_worth_starting(frames_to_predict: int, workers: int) -> int:
    """How many of `infer.workers` one-thread processes to start for this many frames: none (1: the stage's own
    process, on one thread as a worker would, so the run key and the arithmetic stay those of the workers) when
    there are too few frames to pay for the starts."""
    return workers if frames_to_predict >= MIN_FRAMES_FOR_WORKERS else 1


def run_inference(backend, frames: list[tuple[str, str]], out_dir: str | Path, model_id: str,
                  table: str | Path | None = None, batch: int = 16, progress=None, settings: dict | None = None,
                  cache_dir: str | Path | None = None) -> dict:
    """frames: (id, image path). Returns counts; writes out_dir/<id>.json and the table. The resume key holds
    the backend's own settings (decoding, pixel budget) plus any `settings` the caller adds."""
    out_dir = Path(out_dir)
    key, cache = _cache_of(backend, model_id, settings, cache_dir, out_dir)
    done, todo = _split_cached(frames, cache, key)
    resumed = len(done)
    for start in range(0, len(todo), batch):  # save as we go: a crash loses at most one chunk
        predictions = backend.analyze(todo[start:start + batch], progress=progress)
        records = [{**p.record(model_id), "run_key": key} for p in predictions]
        write_records(cache, records)
        done += records
    wanted = {image_id for image_id, _ in frames}
    done = [r for r in done if r["id"] in wanted]
    if cache != out_dir:
        write_records(out_dir, done)
    if table is not None:
        from chimera.io import write_parquet
        from chimera.records import flatten

        write_parquet(table, [{**flatten(r), "latency_s": r.get("latency_s"), "output_tokens": r.get("output_tokens"),
                               "json_found": r.get("json_found")} for r in done])
    return {"predicted": len(todo), "skipped": resumed, "total": len(done), "run_key": key,
            "failed": sum(1 for r in done if r.get("failed")),
            "valid": sum(1 for r in done if r["analysis"] is not None)}


def _predict_shard(job: dict) -> None:
    """A worker of `predict_in_workers` (`python -m chimera.vlm.inference JOB.json`): one torch thread, its own
    model, and for each run a backend and its share of the run's frames predicted into the shared resume cache."""
    import torch

    from chimera.vlm.backends import LocalBackend
    from chimera.vlm.models import ModelConfig, load_model

    torch.set_num_threads(1)
    model, processor = load_model(ModelConfig(**job["model"]))
    for number, run in enumerate(job["runs"]):
        backend = LocalBackend(model, processor, job["name"], **run["backend"])
        scratch = Path(job["cache_dir"]) / "_shards" / f"{job['model_id']}-{job['index']}-{number}"
        run_inference(backend, [tuple(f) for f in run["frames"]], scratch, job["model_id"], settings=job["settings"],
                      cache_dir=job["cache_dir"])
        shutil.rmtree(scratch, ignore_errors=True)


def predict_in_workers(model_fields: dict, name: str, runs: list[tuple[dict, list[tuple[str, str]]]], workers: int,
                       model_id: str, settings: dict, cache_dir: str | Path, progress=None) -> None:
    """Fill the resume cache for each run's frames (runs: (backend_kwargs, frames), e.g. constrained and free
    decoding) with `workers` processes of one torch thread each, each loading the model once (`model_fields`: a
    ModelConfig's fields) and building a LocalBackend per run. The tiny model decodes 1.57x faster on two cores as
    two one-thread processes than as one two-thread process (BENCHMARKS.md), and one start per worker for every run
    spares a model load and the imports per run. A `run_inference` with a run's backend settings and `settings` then
    finds every frame in the cache; a worker that fails loses only its unfinished frames, which that run predicts.
    Frames are dealt round-robin, so each worker gets a similar mix of sizes. Workers are plain subprocesses (not
    multiprocessing's spawn, which would re-run the calling stage script)."""
    import chimera

    cache_dir = Path(cache_dir)
    (cache_dir / "_shards").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(chimera.__file__).parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    running = []
    for index in range(workers):
        shards = [{"backend": backend_kwargs, "frames": frames[index::workers]} for backend_kwargs, frames in runs]
        size = sum(len(shard["frames"]) for shard in shards)
        if not size:
            continue
        job = cache_dir / "_shards" / f"{model_id}-{index}.json"
        job.write_text(json.dumps({"model": model_fields, "name": name, "runs": shards, "model_id": model_id,
                                   "settings": settings, "cache_dir": str(cache_dir), "index": index}))
        running.append((subprocess.Popen([sys.executable, "-m", "chimera.vlm.inference", str(job)], env=env), size, job))
    for proc, size, job in running:
        proc.wait()
        job.unlink(missing_ok=True)
        if progress and proc.returncode == 0:
            progress(size)


if __name__ == "__main__":
    _predict_shard(json.loads(Path(sys.argv[1]).read_text()))
