"""Stage winprob: P(win) in two views (team, screenshot), chosen by nested match-grouped CV; the outer folds alone
give the metrics, beside the base rate and a plain 8-feature logistic regression on the same folds."""

from _common import log, params

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chimera.demos.winprob import (BUY_MOMENT, FREEZE_END, MOMENT_NAMES, WinProbConfig, ece_floor,  # noqa: E402
                                   reliability, round_ids, train_screen_view, train_team_view)
from chimera.io import read_parquet, save_figure, save_joblib, write_csv, write_json, write_parquet  # noqa: E402

p = params("winprob")
cfg = WinProbConfig(feature_sets=tuple(p["feature_sets"]), kinds=tuple(p["models"]),
                    calibrations=tuple(p["calibrations"]), logreg_C=tuple(p["logreg_C"]),
                    gbm_depth=tuple(p["gbm_depth"]), outer_folds=p["outer_folds"], inner_folds=p["inner_folds"],
                    calibration_folds=p["calibration_folds"], bootstrap=p["bootstrap"],
                    screen_viewpoints_per_side=p["screen_viewpoints_per_side"], seed=params()["seed"],
                    workers=p["workers"])
snaps = read_parquet("data/processed/snapshots.parquet")
team, team_metrics, oof = train_team_view(snaps, cfg)
screen, screen_metrics = train_screen_view(snaps, cfg)
base = team_metrics["base_rate"]["log_loss"]
if not team_metrics["chosen"]["log_loss"] < base:
    raise SystemExit(f"winprob: the team-view model does not beat the base rate: {team_metrics['chosen']}")
targets = p["targets"]
chosen, buy = team_metrics["chosen"], team_metrics["per_moment"][BUY_MOMENT]["chosen"]
metrics = {
    "team": team_metrics, "screenshot": screen_metrics,
    "matches": int(snaps.match_id.nunique()), "snapshots": int(len(snaps)), "outer_folds": cfg.outer_folds,
    "beats_baseline": bool(chosen["log_loss"] < base),
    "beats_plain_logreg": bool(chosen["log_loss"] < team_metrics["plain_logreg"]["log_loss"]),
    "targets": {"log_loss": [targets["log_loss"], chosen["log_loss"] <= targets["log_loss"]],
                "roc_auc": [targets["roc_auc"], chosen["roc_auc"] >= targets["roc_auc"]],
                "ece": [targets["ece"], chosen["ece"] <= targets["ece"]],
                "ece_buy_time": [targets["ece_buy_time"], buy["ece"] <= targets["ece_buy_time"]]},
}
# what a perfectly calibrated model would score on these rounds: the ECE targets read against their noise
rounds, fe = round_ids(snaps), (snaps.moment == FREEZE_END).to_numpy()
metrics["ece_floor"] = {"overall": ece_floor(oof.p_ct_win, rounds, targets["ece"], seed=cfg.seed),
                        BUY_MOMENT: ece_floor(oof.p_buy_time[fe], rounds[fe], targets["ece_buy_time"], seed=cfg.seed)}
snaps["p_ct_win"] = oof.p_ct_win
write_parquet("data/processed/snapshots_winprob.parquet", snaps)
save_joblib(team, "models/winprob.joblib")
save_joblib(screen, "models/winprob_screen.joblib")
write_json("metrics/winprob.json", metrics)

# reliability per moment, out of fold: the chosen team view beside its plain baseline; buy time: the buy-time model
y, rel = snaps.ct_win.to_numpy(), []
panels = [(BUY_MOMENT, FREEZE_END, {"buy-time model": "p_buy_time"})] + \
         [(m, m, {"chosen": "p_ct_win", "plain logreg": "p_plain"}) for m in MOMENT_NAMES]
fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9), sharey=True)
for ax, (moment, rows_of, curves) in zip(axes, panels):
    mask = (snaps.moment == rows_of).to_numpy()
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    for label, col in curves.items():
        r = reliability(y[mask], oof[col].to_numpy()[mask]).assign(moment=moment, model=label)
        rel.append(r)
        style = {"ls": "--", "marker": "x"} if label == "plain logreg" else {"ls": "-", "marker": "o", "lw": 2.5}
        ax.plot(r.predicted, r.observed, ms=4, label=label, alpha=0.8, **style)
    m = team_metrics["per_moment"].get(moment, {}).get("chosen", {})
    ax.set(title=f"{moment}\nn={m.get('n', 0)}, ECE {m.get('ece', float('nan')):.3f}", xlabel="predicted P(CT win)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper left")
axes[0].set_ylabel("observed CT win rate")
fig.suptitle("Win probability, team view: reliability per moment (nested CV, out of fold)")
fig.tight_layout()
save_figure(fig, "plots/winprob_reliability.png")
write_csv("plots/winprob_reliability.csv", pd.concat(rel, ignore_index=True))
log("winprob").info("team view %s: log loss %.3f (plain %.3f, base rate %.3f), AUC %.3f, ECE %.3f; buy time ECE %.3f; "
                    "screenshot view %s: log loss %.3f (alive-only %.3f)", team_metrics["final"]["candidate"],
                    chosen["log_loss"], team_metrics["plain_logreg"]["log_loss"], base, chosen["roc_auc"],
                    chosen["ece"], buy["ece"], screen_metrics["final"]["candidate"],
                    screen_metrics["chosen"]["log_loss"], screen_metrics["plain_logreg"]["log_loss"])
