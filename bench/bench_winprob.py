"""Win probability at other snapshot strides: the team view's nested CV on snapshots rebuilt every N seconds from
the parsed demos (data/processed/demos, after `dvc repro parse_demos`), against the plain baseline, same folds.

    python bench/bench_winprob.py --stride 10 --bootstrap 200

Rows are weighted so each round counts once, so a denser stride adds rows, not weight per round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from chimera.demos.canonical import MatchTables  # noqa: E402
from chimera.demos.snapshots import build_snapshots  # noqa: E402
from chimera.demos.winprob import WinProbConfig, train_team_view  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stride", type=float, default=10.0, help="seconds between sampled snapshots")
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    tables = {n: pd.read_parquet(f"data/processed/demos/{n}.parquet") for n in ("frames", "rounds", "bombs", "damages")}
    snaps = []
    for match_id, rounds in tables["rounds"].groupby("match_id"):
        pick = {n: df[df.match_id == match_id] for n, df in tables.items() if n != "rounds"}
        snaps.append(build_snapshots(MatchTables(match_id, rounds.map_name.iloc[0], "parquet", pick["frames"], rounds,
                                                 pick["bombs"], pick["damages"]), args.stride))
    snaps = pd.concat(snaps, ignore_index=True)
    t0 = time.perf_counter()
    _, m, _ = train_team_view(snaps, WinProbConfig(bootstrap=args.bootstrap))
    print(f"stride {args.stride:g} s: {len(snaps)} snapshots, nested CV {time.perf_counter() - t0:.0f} s")
    for name in ("chosen", "plain_logreg", "base_rate"):
        s = m[name]
        print(f"  {name:13s} log loss {s['log_loss']:.4f}  AUC {s['roc_auc']:.4f}  ECE {s['ece']:.4f}")
    print("  chosen per outer fold:", [f["chosen"] for f in m["chosen_per_fold"]])


if __name__ == "__main__":
    main()
