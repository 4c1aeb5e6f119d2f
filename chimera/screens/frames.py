"""Frames on disk and the manifest: one PNG per frame, named by the sha256 of its bytes.

Manifest (Parquet, one row per frame): id, path, source (synthetic | video | real), origin (file/URL),
timestamp (seconds into a video, else null), width, height, truth (GameState JSON when known), meta (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image

from chimera.io import atomic_write_bytes, read_parquet, readable_images, sha256_bytes, write_parquet
from chimera.screens.hud import png_bytes

MANIFEST_COLUMNS = ["id", "path", "source", "origin", "timestamp", "width", "height", "truth", "meta"]


def save_frame(image: Image.Image, folder: Path, source: str, origin: str, timestamp: float | None = None,
               truth: dict | None = None, meta: dict | None = None) -> dict:
    data = png_bytes(image.convert("RGB"))
    frame_id = sha256_bytes(data)
    path = Path(folder) / f"{frame_id}.png"
    if not path.exists():
        atomic_write_bytes(path, data)
    return {"id": frame_id, "path": str(path), "source": source, "origin": origin, "timestamp": timestamp,
            "width": image.width, "height": image.height,
            "truth": json.dumps(truth) if truth is not None else None,
            "meta": json.dumps(meta or {}, sort_keys=True)}


def write_manifest(path: str | Path, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).drop_duplicates("id").reset_index(drop=True)
    validate_manifest(df, str(path))
    write_parquet(path, df)
    return df


def validate_manifest(df: pd.DataFrame, where: str) -> None:
    missing = set(MANIFEST_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{where}: manifest lacks columns {sorted(missing)}")
    if df.id.duplicated().any():
        raise ValueError(f"{where}: duplicate frame ids")
    bad = df[~df.source.isin(["synthetic", "video", "real"])]
    if len(bad):
        raise ValueError(f"{where}: unknown sources {sorted(set(bad.source))}")
    for row in df.itertuples():
        if not Path(row.path).exists():
            raise ValueError(f"{where}: frame file {row.path} is missing")


def load_manifests(paths: list[str | Path]) -> pd.DataFrame:
    return pd.concat([read_parquet(p) for p in paths if Path(p).exists()], ignore_index=True)


def contact_sheet(paths: list[str], out: str | Path, columns: int = 4, thumb_width: int = 480,
                  labels: list[str] | None = None) -> Path:
    """A grid of thumbnails (16:9 cells), optionally captioned."""
    from PIL import ImageDraw

    thumb_h = thumb_width * 9 // 16
    rows = max(1, -(-len(paths) // columns))
    sheet = Image.new("RGB", (columns * thumb_width, rows * (thumb_h + 22)), (18, 18, 18))
    draw = ImageDraw.Draw(sheet)
    readable = readable_images(list(enumerate(paths)), path_of=lambda item: item[1])  # bad frames: reported, left out
    for i, ((j, _), img) in enumerate(readable):
        img.thumbnail((thumb_width, thumb_h))
        x, y = (i % columns) * thumb_width, (i // columns) * (thumb_h + 22)
        sheet.paste(img, (x + (thumb_width - img.width) // 2, y + (thumb_h - img.height) // 2))
        if labels:
            draw.text((x + 6, y + thumb_h + 4), labels[j][:70], fill=(230, 230, 230))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    sheet.save(tmp)
    tmp.replace(out)
    return out


