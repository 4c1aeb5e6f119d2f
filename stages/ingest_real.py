"""Stage ingest_real: the real screenshots in ../shared (no truth) -> PNG frames + manifest (source real)."""

from _common import log, params

import csv
from pathlib import Path

from chimera.io import readable_images, set_max_image_pixels
from chimera.screens.frames import save_frame, write_manifest

set_max_image_pixels(params("screens")["max_image_pixels"])  # docs/errors.md: bombs refused

src = Path(params("screens")["shared_screenshots"])
rows = []
with open(src / "manifest.csv", newline="") as fh:
    entries = list(csv.DictReader(fh))
for entry, image in readable_images(entries, path_of=lambda e: src / e["file"], log=log("ingest_real")):
    rows.append(save_frame(image, Path("data/frames/real"), "real", f"{entry['repo']}/{entry['path']}@{entry['commit'][:8]}",
                           meta={"file": entry["file"], "tier": entry["tier"], "license": entry["license"],
                                 "notes": entry["notes"]}))
df = write_manifest("data/frames/real.parquet", rows)
log("ingest_real").info("%d real screenshots (%d unreadable, skipped)", len(df), len(entries) - len(df))
