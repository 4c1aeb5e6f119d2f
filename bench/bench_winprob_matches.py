"""Win probability against the number of training matches: is the team view limited by its 10 matches?

The stage's outer folds (grouped by match); inside each, the model is fit on n of the outer-train matches (several
random draws of n) and scored on the fold's test matches, so every point of the curve is scored on all 10
matches, out of fold. Fixed candidates, no selection (the plain 8-feature logistic regression the stage reports
as its baseline, and the stage's other kinds on the plain features): the curve is about data, not selection.

    python bench/bench_winprob_matches.py --draws 5

Reads data/processed/snapshots.parquet (`dvc repro snapshots`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chimera.demos.winprob import (Candidate, fit_candidate, grouped_folds, predict, round_weights, score,  # noqa: E402
                                   team_features)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=5, help="random draws of the n training matches per fold")
    ap.add_argument("--outer-folds", type=int, default=5)
    args = ap.parse_args()
    snaps = pd.read_parquet("data/processed/snapshots.parquet")
    X, y, w, groups = team_features(snaps), snaps.ct_win.to_numpy(), round_weights(snaps), snaps.match_id
    candidates = {"plain logreg": Candidate("plain", "logreg", "none", (("C", 1.0),)),
                  "gbm[plain]": Candidate("plain", "gbm", "none", (("max_depth", 3),)),
                  "logreg[player]": Candidate("player", "logreg", "none", (("C", 0.1),))}
    outer = grouped_folds(groups, args.outer_folds)
    most = min(len(set(groups.iloc[tr])) for tr, _ in outer)
    rng = np.random.default_rng(0)
    print(f"{groups.nunique()} matches, {len(snaps)} snapshots, {args.outer_folds} outer folds "
          f"(at most {most} training matches each)")
    print("| model | training matches | log loss | ROC AUC | ECE |")
    print("|---|---|---|---|---|")
    for name, c in candidates.items():
        for n in sorted({2, 4, 6, most}):
            results = []
            for _ in range(args.draws if n < most else 1):
                p = np.zeros(len(y))
                for tr, te in outer:
                    matches = sorted(set(groups.iloc[tr]))
                    keep = set(rng.choice(matches, size=n, replace=False))
                    tr = tr[groups.iloc[tr].isin(keep).to_numpy()]
                    model = fit_candidate(c, X.iloc[tr], y[tr], w[tr], groups.iloc[tr], 3, 0)
                    p[te] = predict(model, c, X.iloc[te])
                results.append(score(y, p))
            mean = {k: float(np.mean([r[k] for r in results])) for k in ("log_loss", "roc_auc", "ece")}
            print(f"| {name} | {n} | {mean['log_loss']:.3f} | {mean['roc_auc']:.3f} | {mean['ece']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
