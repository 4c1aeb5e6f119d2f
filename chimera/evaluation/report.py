"""The research question in one table: models A-E side by side, and paired differences with bootstrap CIs.

Every model is scored on the same evaluation frames, so differences are paired per frame: the bootstrap
resamples frames, not models, which is far tighter than comparing two independent CIs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chimera.evaluation.metrics import bootstrap_ci

# per-frame columns of metrics.frame_rows that the report compares, with what they mean to a reader
FRAME_METRICS = {
    "json_found": "JSON found",
    "valid": "schema compliance",
    "value_accuracy": "game_state accuracy (labelled fields)",
    "analysis_accuracy": "economy + importance accuracy",
    "consistency": "self-consistency",
    "grounding": "grounding",
}


def paired_delta(a: pd.Series, b: pd.Series, seed: int = 0, n: int = 2000) -> dict:
    """mean(a - b) over the frames both models have a value for, with a 95% bootstrap CI over frames."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    diffs = (joined.a - joined.b).to_numpy(dtype=float)
    if len(diffs) == 0:
        return {"delta": None, "ci95": [None, None], "n": 0, "verdict": "no frames in common"}
    lo, hi = bootstrap_ci(diffs, n=n, seed=seed)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "no detectable difference"
    return {"delta": float(diffs.mean()), "ci95": [lo, hi], "n": int(len(diffs)), "verdict": verdict}


def build_report(summaries: dict[str, dict], frames: dict[str, pd.DataFrame], comparisons: list[list[str]],
                 training: dict[str, dict] | None = None, seed: int = 0) -> dict:
    """summaries: model -> metrics/<model>.json; frames: model -> plots/<model>/frames.csv (indexed by id)."""
    models = {}
    for name, summary in summaries.items():
        table = frames[name]
        models[name] = {
            "n_frames": summary["n_frames"],
            "json_validity": summary["json_validity"]["value"],
            "schema_compliance": summary["schema_compliance"]["value"],
            "mean_field_accuracy": summary["mean_field_accuracy"]["value"],
            **{key: _mean_ci(table[key], seed) for key in FRAME_METRICS if key not in ("valid", "json_found")},
            "training": (training or {}).get(name),
        }
    deltas = []
    for a, b in comparisons:
        if a not in frames or b not in frames:
            continue
        row = {"model": a, "baseline": b}
        for key in FRAME_METRICS:
            row[key] = paired_delta(frames[a][key], frames[b][key], seed)
        deltas.append(row)
    return {"models": models, "comparisons": deltas}


def _mean_ci(values: pd.Series, seed: int) -> dict:
    clean = values.dropna().to_numpy(dtype=float)
    lo, hi = bootstrap_ci(clean, seed=seed)
    return {"value": float(clean.mean()) if len(clean) else None, "ci95": [lo, hi], "n": int(len(clean))}


def _pct(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.0f}%"


def markdown(report: dict) -> str:
    """The two tables the README shows: per model, and paired differences."""
    lines = ["| model | frames | JSON found | schema-valid | game_state acc. (labelled) | economy+importance | "
             "consistency | grounding | train loss first -> last |", "|" + "---|" * 9]
    for name, m in report["models"].items():
        t = m.get("training") or {}
        loss = f"{t['first_loss']:.2f} -> {t['final_loss']:.2f}" if t.get("first_loss") is not None else "-"
        lines.append(f"| {name} | {m['n_frames']} | {_pct(m['json_validity'])} | {_pct(m['schema_compliance'])} | "
                     f"{_pct(m['value_accuracy']['value'])} | {_pct(m['analysis_accuracy']['value'])} | "
                     f"{_pct(m['consistency']['value'])} | {_pct(m['grounding']['value'])} | {loss} |")
    if report["comparisons"]:
        lines += ["", "| comparison | " + " | ".join(FRAME_METRICS.values()) + " |",
                  "|" + "---|" * (len(FRAME_METRICS) + 1)]
        for row in report["comparisons"]:
            cells = []
            for key in FRAME_METRICS:
                d = row[key]
                cells.append("-" if d["delta"] is None else
                             f"{100 * d['delta']:+.0f} pts [{100 * d['ci95'][0]:+.0f}, {100 * d['ci95'][1]:+.0f}] (n={d['n']})")
            lines.append(f"| {row['model']} vs {row['baseline']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
