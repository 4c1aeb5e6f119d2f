"""Stage snapshots: canonical tables -> key-moment snapshots (Parquet) and XvX states."""

from _common import log, params

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from chimera.demos.canonical import MatchTables
from chimera.demos.snapshots import build_snapshots, validate_snapshots, xvx_states
from chimera.io import read_parquet, write_parquet

p = params("snapshots")
src = Path("data/processed/demos")
tables = {name: read_parquet(src / f"{name}.parquet") for name in ("frames", "rounds", "bombs", "damages")}
snaps, states = [], []
for match_id, rounds in tqdm(tables["rounds"].groupby("match_id"), desc="matches", unit="match"):
    pick = {name: df[df.match_id == match_id] for name, df in tables.items() if name != "rounds"}
    match = MatchTables(match_id, rounds.map_name.iloc[0], "parquet", pick["frames"], rounds, pick["bombs"],
                        pick["damages"])
    snaps.append(build_snapshots(match, p["sample_every_s"]))
    states.append(xvx_states(match))
snaps = pd.concat(snaps, ignore_index=True)
validate_snapshots(snaps, p["min_rows"])
write_parquet("data/processed/snapshots.parquet", snaps)
write_parquet("data/processed/xvx_states.parquet", pd.concat(states, ignore_index=True))
log("snapshots").info("%d snapshots: %s", len(snaps), snaps.moment.value_counts().to_dict())
