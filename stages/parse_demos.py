"""Stage parse_demos: cs2-demo-format zips and .dem files -> canonical Parquet tables per match."""

from _common import log, params

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from chimera.demos.download import download_demos
from chimera.demos.sources import load_sources
from chimera.io import DEMO_CACHE, write_json, write_parquet

p = params("demos")
out = Path("data/processed/demos")

sources = sorted(Path(p["parsed_dir"]).glob("*.zip"))
for folder in p["dem_dirs"]:
    sources += sorted(Path(folder).glob("*.dem"))
sources += download_demos(p.get("dem_urls", []), DEMO_CACHE)

loaded = load_sources(sources, p["sample_every_ticks"], lambda items: tqdm(items, desc="demos", unit="demo"))
errors, skipped = loaded.failed, loaded.skipped
tables = {name: [getattr(m, name) for m in loaded.matches] for name in ("frames", "rounds", "bombs", "damages")}
if not tables["rounds"]:  # docs/errors.md: non-zero only when nothing usable came out
    raise SystemExit(f"parse_demos: none of the {len(sources)} sources has a complete round: " +
                     "; ".join(f"{e['file']}: {e.get('error') or e.get('reason')}" for e in errors + skipped))
for name, parts in tables.items():
    write_parquet(out / f"{name}.parquet", pd.concat(parts, ignore_index=True))
rounds = pd.concat(tables["rounds"], ignore_index=True)
report = {"sources": len(sources), "parsed": len(sources) - len(errors) - len(skipped), "failed": errors,
          "skipped": skipped,
          "matches_with_rounds": int(rounds.match_id.nunique()), "rounds": int(len(rounds))}
write_json(out / "report.json", report)
log("parse_demos").info("%d sources: %d parsed, %d failed, %d skipped (no rounds); %d rounds", len(sources),
                        report["parsed"], len(errors), len(skipped), len(rounds))
