"""Small shared helpers: content hashes, atomic writes, Parquet tables, params."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temp file beside the target, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_parquet(path: str | Path, rows: Iterable[dict] | Any, schema: pa.Schema | None = None) -> Path:
    """Rows (list of dicts) or a pandas DataFrame -> Parquet, atomically."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        table = pa.Table.from_pandas(rows, preserve_index=False, schema=schema)
    else:
        table = pa.Table.from_pylist(list(rows), schema=schema)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_parquet(path: str | Path):
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: missing; run the stage that writes it (dvc repro)")
    return pq.read_table(path).to_pandas()


def load_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def shared_dir() -> Path:
    """The read-only ../shared beside the checkout (CHIMERA_SHARED overrides)."""
    env = os.environ.get("CHIMERA_SHARED")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    return (here.parent / "shared").resolve()


def save_joblib(obj: Any, path: str | Path) -> Path:
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    joblib.dump(obj, tmp)
    os.replace(tmp, path)
    return path


def write_csv(path: str | Path, df) -> Path:
    return atomic_write_text(path, df.to_csv(index=False))


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)
    return path
