"""Stage winprob: train and evaluate P(CT win) on match-grouped folds; write model, metrics, plot data."""

from _common import log, params

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from chimera.demos.winprob import train_winprob  # noqa: E402
from chimera.io import read_parquet, save_figure, save_joblib, write_csv, write_json, write_parquet  # noqa: E402

p = params("winprob")
snaps = read_parquet("data/processed/snapshots.parquet")
result = train_winprob(snaps, tuple(p["models"]), p["folds"], p["calibration"], params()["seed"])
if not result.metrics["beats_baseline"]:
    raise SystemExit(f"winprob: {result.kind} does not beat the base rate: {result.metrics}")
snaps["p_ct_win"] = result.oof
write_parquet("data/processed/snapshots_winprob.parquet", snaps)
save_joblib(result.model, "models/winprob.joblib")
write_json("metrics/winprob.json", result.metrics)
write_csv("plots/winprob_reliability.csv", result.reliability)

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
ax.plot(result.reliability.predicted, result.reliability.observed, "o-", label=result.kind)
ax.set(xlabel="predicted P(CT win)", ylabel="observed CT win rate", title="Win probability: reliability (out of fold)")
ax.legend()
fig.tight_layout()
save_figure(fig, "plots/winprob_reliability.png")
m = result.metrics
log("winprob").info("%s: log loss %.3f (base rate %.3f), AUC %.3f, ECE %.3f", result.kind, m[result.kind]["log_loss"],
                    m["baseline_base_rate"]["log_loss"], m[result.kind]["roc_auc"], m[result.kind]["ece"])
