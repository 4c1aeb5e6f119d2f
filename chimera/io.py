"""Small shared helpers: content hashes, atomic writes, Parquet tables, params."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


# Caches outside DVC's outputs (git-ignored): `dvc repro` never wipes them, and the CLI and the stages share them.
CACHE = Path(".cache")
CLAUDE_CACHE = CACHE / "claude"            # paid labels, per image + prompt + model
PREDICTIONS_CACHE = CACHE / "predictions"  # finished predictions, per run_key
VIDEO_CACHE = CACHE / "video"              # yt-dlp downloads
DEMO_CACHE = CACHE / "demos"               # demo downloads
CHECKPOINT_CACHE = CACHE / "checkpoints"   # an unfinished training run's checkpoints, deleted when it finishes


# Above this many pixels an image is refused before it is decoded (a decompression bomb: a small PNG that
# inflates to gigabytes). 8K UHD is 33 MP; every real screenshot is far below. params.yaml
# `screens.max_image_pixels` sets it for the stages and the CLI (set_max_image_pixels); tests hold them equal.
MAX_IMAGE_PIXELS = 50_000_000


def set_max_image_pixels(limit: int) -> None:
    global MAX_IMAGE_PIXELS
    MAX_IMAGE_PIXELS = int(limit)


def open_image(source: str | Path | bytes, max_pixels: int | None = None):
    """Decode an image to RGB, or raise ValueError naming the file and the problem (empty, not an image,
    truncated, a directory, too many pixels). The size is read from the header and checked before decoding."""
    from PIL import Image, UnidentifiedImageError

    max_pixels = max_pixels or MAX_IMAGE_PIXELS
    name = "image bytes" if isinstance(source, bytes) else str(source)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if not data:
            raise ValueError("empty file")
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise ValueError(f"{image.width}x{image.height} pixels is above the limit of {max_pixels:,} "
                                 "(a decompression bomb?), refused before decoding")
            image.load()
            return image.convert("RGB")
    except Image.DecompressionBombError as exc:  # PIL's own header check, for sizes past twice its limit
        raise ValueError(f"{name}: unreadable image: too many pixels (a decompression bomb?), refused before "
                         f"decoding: {exc}") from exc
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{name}: unreadable image: {reason}") from exc


def readable_images(items, path_of=lambda item: item, log=None) -> list[tuple[object, object]]:
    """(item, decoded RGB image) for every item whose image opens; each one that does not is reported (its
    file and the reason, docs/errors.md) and left out, so one bad file never stops a batch."""
    import logging

    log = log or logging.getLogger("chimera.images")
    out = []
    for item in items:
        try:
            out.append((item, open_image(path_of(item))))
        except ValueError as exc:
            log.warning("skipped: %s", exc)
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temp path beside `path` (same suffix, so writers that look at it still work); on success it is
    renamed over `path`, on failure removed: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should be an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


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
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_parquet(path: str | Path):
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: missing; run the stage that writes it (dvc repro)")
    return pq.read_table(path).to_pandas()


def load_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def save_joblib(obj: Any, path: str | Path) -> Path:
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp)
    return Path(path)


def write_csv(path: str | Path, df) -> Path:
    return atomic_write_text(path, df.to_csv(index=False))


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return Path(path)


def git_revision() -> str:
    """The commit the working tree is at, flagged when the code or configuration differs from it (provenance for
    the report and the model card)."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        # code and configuration only: a running pipeline has always modified its tracked outputs (metrics, dvc.lock)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "chimera", "stages",
                                "dvc.yaml", "params.yaml"], capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev or "unknown") + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
