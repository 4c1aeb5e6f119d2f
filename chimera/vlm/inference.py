"""Run a backend over frames: one prediction JSON per frame id + a Parquet table; resumable.

A frame is skipped when a prediction already exists for the same model fingerprint and prompt hash, so an
interrupted run continues where it stopped and a changed model or prompt predicts everything again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from chimera.io import read_json
from chimera.prompts import PROMPT_HASH
from chimera.records import write_records


def model_fingerprint(path_or_name: str) -> str:
    """Hash of the weights for a local model folder; the name itself for a hub id or remote model."""
    folder = Path(path_or_name)
    if not folder.is_dir():
        return path_or_name
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.safetensors")):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"{folder.name}@{h.hexdigest()[:12]}"


def run_inference(backend, frames: list[tuple[str, str]], out_dir: str | Path, model_id: str,
                  table: str | Path | None = None, batch: int = 16, progress=None) -> dict:
    """frames: (id, image path). Returns counts; writes out_dir/<id>.json and the table."""
    out_dir = Path(out_dir)
    done, todo = [], []
    for image_id, path in frames:
        existing = out_dir / f"{image_id}.json"
        if existing.exists():
            record = read_json(existing)
            if record.get("model") == model_id and record.get("prompt_hash") == PROMPT_HASH:
                done.append(record)
                continue
        todo.append((image_id, path))
    skipped = len(done)
    for start in range(0, len(todo), batch):  # save as we go: a crash loses at most one chunk
        predictions = backend.analyze(todo[start:start + batch], progress=progress)
        records = [p.record(model_id) for p in predictions]
        write_records(out_dir, records)
        done += records
    wanted = {image_id for image_id, _ in frames}
    done = [r for r in done if r["id"] in wanted]
    if table is not None:
        from chimera.io import write_parquet
        from chimera.records import flatten

        write_parquet(table, [{**flatten(r), "latency_s": r.get("latency_s"), "output_tokens": r.get("output_tokens"),
                               "json_found": r.get("json_found")} for r in done])
    return {"predicted": len(todo), "skipped": skipped, "total": len(done),
            "valid": sum(1 for r in done if r["analysis"] is not None)}
