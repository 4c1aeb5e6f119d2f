"""Stage ingest_real: the real screenshots in ../shared (no truth) -> PNG frames + manifest (source real)."""

from _common import log, params

import csv
from pathlib import Path

from PIL import Image

from chimera.screens.frames import save_frame, write_manifest

src = Path(params("screens")["shared_screenshots"])
rows = []
with open(src / "manifest.csv", newline="") as fh:
    for entry in csv.DictReader(fh):
        image = Image.open(src / entry["file"])
        rows.append(save_frame(image, Path("data/frames/real"), "real", f"{entry['repo']}/{entry['path']}@{entry['commit'][:8]}",
                               meta={"file": entry["file"], "tier": entry["tier"], "license": entry["license"],
                                     "notes": entry["notes"]}))
df = write_manifest("data/frames/real.parquet", rows)
log("ingest_real").info("%d real screenshots", len(df))
