"""Plot data for `dvc plots` (CSV) and PNGs for people, from one model's frame scores."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chimera.evaluation.metrics import FrameScore, confusion  # noqa: E402
from chimera.io import save_figure, write_csv  # noqa: E402
from chimera.schema import GAME_STATE_FIELDS  # noqa: E402

CONFUSION_FIELDS = ("weapon_primary", "player_side", "bomb_status")
HISTOGRAM_FIELDS = ("player_health", "player_money", "alive_enemies")


def write_plots(summary: dict, scores: list[FrameScore], folder: str | Path, title: str) -> list[Path]:
    folder = Path(folder)
    written = []
    acc = pd.DataFrame([{"field": f, "accuracy": summary["fields"][f]["value_accuracy"]["value"]} for f in GAME_STATE_FIELDS])
    written.append(write_csv(folder / "field_accuracy.csv", acc))
    for name in CONFUSION_FIELDS:
        written.append(write_csv(folder / f"confusion_{name}.csv",
                                 pd.DataFrame(confusion([s.pairs[name] for s in scores]), columns=["actual", "predicted", "count"])))
    for name in HISTOGRAM_FIELDS:
        errs = [{"error": p - t} for s in scores for t, p in [s.pairs[name]] if t is not None and p is not None]
        written.append(write_csv(folder / f"errors_{name}.csv", pd.DataFrame(errs, columns=["error"])))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lo = [summary["fields"][f]["value_accuracy"]["value"] - summary["fields"][f]["value_accuracy"]["ci95"][0] for f in GAME_STATE_FIELDS]
    hi = [summary["fields"][f]["value_accuracy"]["ci95"][1] - summary["fields"][f]["value_accuracy"]["value"] for f in GAME_STATE_FIELDS]
    # a field no label has a value for (e.g. map_name, never drawn) has no accuracy: an empty bar
    ax.barh(acc.field, np.nan_to_num(acc.accuracy.astype(float)), xerr=np.nan_to_num([lo, hi]), color="#4c72b0", capsize=2)
    ax.set(xlim=(0, 1), xlabel="value accuracy, labelled frames only (95% bootstrap CI)",
           title=f"{title}: game_state accuracy per field")
    ax.invert_yaxis()
    fig.tight_layout()
    written.append(save_figure(fig, folder / "field_accuracy.png"))
    plt.close(fig)

    fig, axes = plt.subplots(1, len(CONFUSION_FIELDS), figsize=(5 * len(CONFUSION_FIELDS), 4.5))
    for ax, name in zip(axes, CONFUSION_FIELDS):
        table = pd.DataFrame(confusion([s.pairs[name] for s in scores]))
        if table.empty:
            ax.set_axis_off()
            continue
        grid = table.pivot_table(index="actual", columns="predicted", values="count", fill_value=0)
        ax.imshow(grid.values, cmap="Blues")
        ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(grid.index)), grid.index, fontsize=7)
        for (i, j), v in pd.DataFrame(grid.values).stack().items():
            if v:
                ax.text(j, i, int(v), ha="center", va="center", fontsize=7)
        ax.set(title=name, xlabel="predicted", ylabel="actual")
    fig.suptitle(f"{title}: confusion matrices")
    fig.tight_layout()
    written.append(save_figure(fig, folder / "confusion.png"))
    plt.close(fig)
    return written


def comparison_plot(report: dict, path: str | Path) -> Path:
    """Left: headline rates per row (baselines and models) with 95% CIs, the constant predictor's value accuracy
    as a dashed line. Right: paired differences against each comparison's reference."""
    models = report["rows"]
    names = list(models)
    bars = [("value_accuracy", "game_state value acc."), ("analysis_accuracy", "economy+importance"),
            ("consistency", "consistency"), ("grounding", "grounding")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / (len(bars) + 1)
    left.bar(range(len(names)), [models[n]["schema_compliance"] for n in names], width, label="schema-valid",
             color="#999999")
    for k, (key, label) in enumerate(bars, start=1):
        values = np.array([models[n][key]["value"] for n in names], dtype=float)  # None (nothing to score) -> nan
        ci = np.array([models[n][key]["ci95"] for n in names], dtype=float)
        errs = np.nan_to_num(np.abs([values - ci[:, 0], ci[:, 1] - values]))
        left.bar([i + k * width for i in range(len(names))], np.nan_to_num(values), width, yerr=errs, label=label,
                 capsize=2)
    constant = (models.get("constant") or {}).get("value_accuracy", {}).get("value")
    if constant is not None:
        left.axhline(constant, color="black", ls="--", lw=1, label="constant predictor (value acc.)")
    left.set_xticks([i + width * len(bars) / 2 for i in range(len(names))], names, rotation=15)
    left.set(ylim=(0, 1.05), ylabel="rate (95% bootstrap CI)", title="Baselines and models on the evaluation frames")
    left.legend(fontsize=8, ncol=3)

    rows = [(f"{c['model']} - {c['baseline']}", key, c[key]) for c in report["comparisons"]
            for key in ("value_accuracy", "analysis_accuracy") if c[key]["delta"] is not None]
    for y, (label, key, d) in enumerate(rows):
        color = "#4c72b0" if key == "value_accuracy" else "#dd8452"
        right.errorbar(d["delta"], y, xerr=[[d["delta"] - d["ci95"][0]], [d["ci95"][1] - d["delta"]]], fmt="o",
                       color=color, capsize=3)
    right.axvline(0, color="grey", lw=1)
    right.set_yticks(range(len(rows)), [f"{label}\n{'state' if key == 'value_accuracy' else 'economy+imp.'}"
                                        for label, key, _ in rows], fontsize=7)
    right.invert_yaxis()
    right.set(xlabel="paired difference (95% bootstrap CI over frames)", title="Does it help?")
    fig.tight_layout()
    out = save_figure(fig, path)
    plt.close(fig)
    return out
