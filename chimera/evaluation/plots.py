"""Plot data for `dvc plots` (CSV) and PNGs for people, from one model's frame scores."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chimera.evaluation.metrics import FrameScore, confusion, scored_pairs  # noqa: E402
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
                                 pd.DataFrame(confusion(scored_pairs(scores, name)), columns=["actual", "predicted", "count"])))
    for name in HISTOGRAM_FIELDS:
        errs = [{"error": p - t} for t, p in scored_pairs(scores, name) if t is not None and p is not None]
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
        table = pd.DataFrame(confusion(scored_pairs(scores, name)))
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


def comparison_plot(report: dict, path: str | Path, shown: dict[str, str] | None = None) -> Path:
    """Left: headline rates per row (baselines and models; `shown` picks rows and labels them) with 95% CIs, the
    constant predictor's value accuracy as a dashed line. Right: the research answers (over seeds and frames) and
    the paired differences of the report's comparisons."""
    shown = shown or {name: name for name in report["rows"]}
    models = {shown[n]: report["rows"][n] for n in shown if n in report["rows"]}
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

    research = report.get("research") or {}
    rows = [(question.replace("_vs_", " - "), key, research[question] if key == "value_accuracy" else research[question][key])
            for question in ("C_vs_B", "D_vs_B", "C_vs_control") if question in research
            for key in ("value_accuracy", "analysis_accuracy")]
    rows += [(f"{shown.get(c['model'], c['model'])} - {shown.get(c['baseline'], c['baseline'])}", key, c[key])
             for c in report["comparisons"] for key in ("value_accuracy", "analysis_accuracy") if c[key]["delta"] is not None]
    rows = [row for row in rows if row[2]["delta"] is not None]
    for y, (label, key, d) in enumerate(rows):
        color = "#4c72b0" if key == "value_accuracy" else "#dd8452"
        right.errorbar(d["delta"], y, xerr=[[d["delta"] - d["ci95"][0]], [d["ci95"][1] - d["delta"]]], fmt="o",
                       color=color, capsize=3)
    right.axvline(0, color="grey", lw=1)
    right.set_yticks(range(len(rows)), [f"{label}\n{'state' if key == 'value_accuracy' else 'economy+imp.'}"
                                        for label, key, _ in rows], fontsize=7)
    right.invert_yaxis()
    right.set(xlabel="paired difference, 95% interval", title="Does it help? (C, D, control: over seeds and frames)")
    fig.tight_layout()
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def data_efficiency_plot(report: dict, path: str | Path) -> Path:
    """Accuracy against shots, one line per arm (mean over seeds, band: 95% interval over seeds and frames, dots:
    the seeds), with the constant, OCR and zero-shot rows of the same run as horizontal lines."""
    fig = data_efficiency_figure(report)
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def data_efficiency_figure(report: dict):
    summary, rows, labels = report["grid"]["summary"], report["rows"], report["grid"].get("arm_labels", {})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, title) in zip(axes, (("value_accuracy", "game_state value accuracy"),
                                       ("analysis_accuracy", "economy + importance accuracy"))):
        for arm in dict.fromkeys(r["arm"] for r in summary):
            points = [r for r in summary if r["arm"] == arm and r[key]["value"] is not None]
            if not points:
                continue
            x = [r["shots"] for r in points]
            line, = ax.plot(x, [r[key]["value"] for r in points], "o-", label=labels.get(arm, arm))
            ax.fill_between(x, [r[key]["ci95"][0] for r in points], [r[key]["ci95"][1] for r in points],
                            color=line.get_color(), alpha=0.15)
            for r in points:
                ax.scatter([r["shots"]] * len(r[key]["per_seed"]), r[key]["per_seed"], s=10, color=line.get_color(),
                           alpha=0.6)
        for name, style, label in (("constant", "--", "constant"), ("ocr", ":", "OCR"), ("A_zeroshot", "-.", "A (zero-shot)")):
            value = (rows.get(name) or {}).get(key, {}).get("value")
            if value is not None and not np.isnan(value):
                ax.axhline(value, ls=style, color="black", lw=1, label=label)
        shots = sorted({r["shots"] for r in summary})
        ax.set_xscale("log")
        ax.set_xticks(shots, [str(s) for s in shots])
        ax.minorticks_off()
        ax.set(xlabel="labelled screenshots (shots)", ylabel=title, title=title, ylim=(0, 1.02))
        ax.legend(fontsize=7)
    # the training budget is a sentence or two: wrapped, or the page cuts it off at both ends
    title = f"Data efficiency ({len(report['grid']['seeds'])} seeds, {report['grid']['steps']})"
    fig.suptitle(textwrap.fill(title, 130), fontsize=9)
    fig.tight_layout()
    return fig
