"""Stage parse_demos: cs2-demo-format zips and .dem files -> canonical Parquet tables per match."""

from _common import log, params

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from chimera.demos.awpy_adapter import load_dem
from chimera.demos.canonical import DemoError
from chimera.demos.cs2df import load_cs2df
from chimera.demos.download import download_demos
from chimera.io import DEMO_CACHE, write_json, write_parquet

p = params("demos")
out = Path("data/processed/demos")
logger = log("parse_demos")

sources = sorted(Path(p["parsed_dir"]).glob("*.zip"))
for folder in p["dem_dirs"]:
    sources += sorted(Path(folder).glob("*.dem"))
sources += download_demos(p.get("dem_urls", []), DEMO_CACHE)

tables, errors = {"frames": [], "rounds": [], "bombs": [], "damages": []}, []
for path in tqdm(sources, desc="demos", unit="demo"):
    try:
        match = load_cs2df(path) if path.suffix == ".zip" else load_dem(path, p["sample_every_ticks"])
    except DemoError as exc:
        logger.warning("skipped: %s", exc)
        errors.append({"file": str(path), "error": str(exc)})
        continue
    for name in tables:
        tables[name].append(getattr(match, name))

if not tables["rounds"]:
    raise SystemExit(f"parse_demos: none of the {len(sources)} sources parsed: " +
                     "; ".join(f"{e['file']}: {e['error']}" for e in errors))
for name, parts in tables.items():
    write_parquet(out / f"{name}.parquet", pd.concat(parts, ignore_index=True))
rounds = pd.concat(tables["rounds"], ignore_index=True)
report = {"sources": len(sources), "parsed": len(sources) - len(errors), "failed": errors,
          "matches_with_rounds": int(rounds.match_id.nunique()), "rounds": int(len(rounds))}
write_json(out / "report.json", report)
logger.info("%d sources, %d failed, %d rounds", len(sources), len(errors), len(rounds))
if report["rounds"] == 0:
    raise SystemExit("parse_demos: no complete rounds in any source")
