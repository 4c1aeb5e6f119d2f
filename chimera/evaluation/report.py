"""The research question in one table: baselines and models A-E side by side, and paired differences with
bootstrap CIs.

Every row is scored on the same evaluation frames, so differences are paired per frame: the bootstrap
resamples frames, not models, which is far tighter than comparing two independent CIs. Every model stands
beside the trivial baselines of the same run (constant, OCR, hybrid), and its margin over the constant
predictor is reported with its interval; the report says first which models do not beat the constant, then
which beat the classical reader (OCR, on the fields it reads) and the hybrid (OCR's numbers in a model's answer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chimera.evaluation.metrics import bootstrap_ci
from chimera.schema import GAME_STATE_FIELDS

# per-frame columns of metrics.frame_rows that the report compares, with what they mean to a reader
FRAME_METRICS = {
    "json_found": "JSON found",
    "valid": "schema compliance",
    "value_accuracy": "game_state value accuracy",
    "value_accuracy_tolerant": "value accuracy within tolerance",
    "analysis_accuracy": "economy + importance accuracy",
    "consistency": "self-consistency",
    "grounding": "grounding",
}
HEADLINE = "value_accuracy"
CONSTANT = "constant"
OCR, HYBRID = "ocr", "hybrid"
REAL = "real"  # the frame source of the shared real screenshots (scored on what a person read off them)
OCR_FIELDS = ("player_money", "player_armor", "player_health")


def ocr_fields_accuracy(table: pd.DataFrame) -> pd.Series:
    """Per frame, the share of OCR's fields (money, armor, health) answered right, over those the label has: OCR
    reads nothing else, so its game_state value accuracy would count every other field as its miss."""
    columns = [c for c in (f"field:{f}" for f in OCR_FIELDS) if c in table]
    return table[columns].mean(axis=1, skipna=True) if columns else pd.Series(np.nan, index=table.index)


def paired_delta(a: pd.Series, b: pd.Series, seed: int = 0, n: int = 2000) -> dict:
    """mean(a - b) over the frames both rows have a value for, with a 95% bootstrap CI over frames."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    diffs = (joined.a - joined.b).to_numpy(dtype=float)
    if len(diffs) == 0:
        return {"delta": None, "ci95": [None, None], "n": 0, "verdict": "no frames in common"}
    lo, hi = bootstrap_ci(diffs, n=n, seed=seed)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "no detectable difference"
    return {"delta": float(diffs.mean()), "ci95": [lo, hi], "n": int(len(diffs)), "verdict": verdict}


def build_report(summaries: dict[str, dict], frames: dict[str, pd.DataFrame], comparisons: list[list[str]],
                 training: dict[str, dict] | None = None, seed: int = 0,
                 baselines: tuple[str, ...] = ()) -> dict:
    """summaries: row -> metrics/eval/<row>.json; frames: row -> plots/eval/<row>/frames.csv (indexed by id).
    `baselines` names the rows that are baselines (listed first); the others are models."""
    rows = {}
    for name, summary in summaries.items():
        table = frames[name]
        rows[name] = {
            "kind": "baseline" if name in baselines else "model",
            "n_frames": summary["n_frames"],
            "json_validity": summary["json_validity"]["value"],
            "schema_compliance": summary["schema_compliance"]["value"],
            "null_handling": summary.get("null_handling"),
            "fields": {f: summary["fields"][f]["value_accuracy"]["value"] for f in GAME_STATE_FIELDS},
            "ocr_fields_accuracy": float(ocr_fields_accuracy(table).mean()),
            **{key: _mean_ci(table[key], seed) for key in FRAME_METRICS if key not in ("valid", "json_found")},
            "training": (training or {}).get(name),
            "unconstrained": summary.get("unconstrained"),  # the same model decoded without the schema constraint
        }
        if CONSTANT in frames and name != CONSTANT:
            rows[name]["margin_over_constant"] = paired_delta(table[HEADLINE], frames[CONSTANT][HEADLINE], seed)
            rows[name]["analysis_margin_over_constant"] = paired_delta(table["analysis_accuracy"],
                                                                       frames[CONSTANT]["analysis_accuracy"], seed)
            if "source" in table and (table.source == REAL).any():  # the real screenshots, on their own
                real = table.source == REAL
                rows[name]["real_margin_over_constant"] = paired_delta(
                    table[HEADLINE][real], frames[CONSTANT][HEADLINE][frames[CONSTANT].source == REAL], seed)
        if OCR in frames and name != OCR:
            rows[name]["ocr_fields_margin_over_ocr"] = paired_delta(ocr_fields_accuracy(table),
                                                                    ocr_fields_accuracy(frames[OCR]), seed)
        if HYBRID in frames and name != HYBRID:
            rows[name]["margin_over_hybrid"] = paired_delta(table[HEADLINE], frames[HYBRID][HEADLINE], seed)
    deltas = []
    for a, b in comparisons:
        if a not in frames or b not in frames:
            continue
        row = {"model": a, "baseline": b}
        for key in FRAME_METRICS:
            row[key] = paired_delta(frames[a][key], frames[b][key], seed)
        deltas.append(row)
    models = [n for n, r in rows.items() if r["kind"] == "model"]
    below = [n for n in models if (rows[n].get("margin_over_constant") or {}).get("verdict") != "better"]

    def beating(margin: str) -> list[str] | None:  # None: the run has no such baseline
        if not any(margin in rows[n] for n in models):
            return None
        return [n for n in models if (rows[n].get(margin) or {}).get("verdict") == "better"]

    return {"rows": rows, "comparisons": deltas, "headline": HEADLINE,
            "models_not_beating_constant": below, "models_beating_constant": [n for n in models if n not in below],
            "models_beating_constant_on_analysis": beating("analysis_margin_over_constant"),
            "models_beating_ocr_on_its_fields": beating("ocr_fields_margin_over_ocr"),
            "models_beating_hybrid": beating("margin_over_hybrid"),
            "models_beating_constant_on_real": beating("real_margin_over_constant")}


def _mean_ci(values: pd.Series, seed: int) -> dict:
    clean = values.dropna().to_numpy(dtype=float)
    lo, hi = bootstrap_ci(clean, seed=seed)
    return {"value": float(clean.mean()) if len(clean) else None, "ci95": [lo, hi], "n": int(len(clean))}


def _pct(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.0f}%"


def _ci(cell: dict) -> str:
    if cell["value"] is None:
        return "-"
    lo, hi = cell["ci95"]
    return f"{_pct(cell['value'])} [{_pct(lo)}, {_pct(hi)}]"


def _delta(d: dict) -> str:
    if d["delta"] is None:
        return "-"
    return f"{100 * d['delta']:+.0f} pts [{100 * d['ci95'][0]:+.0f}, {100 * d['ci95'][1]:+.0f}]"


# --------------------------------------------------------------------------------------------------
# The research grid (params.yaml sweep): seeds x frames, paired
# --------------------------------------------------------------------------------------------------

def seed_frame_matrix(frames: dict[str, pd.DataFrame], keys: list[str], column: str) -> pd.DataFrame:
    """frames x seeds: `column` of each key's per-frame table (one key per seed, in seed order)."""
    return pd.concat({i: frames[k][column] for i, k in enumerate(keys)}, axis=1)


def _replicates(n_rows: int, n_cols: int, seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bootstrap index pairs: seeds resampled, then frames; the first pair is the sample itself."""
    rng = np.random.default_rng(seed)
    return [(np.arange(n_rows), np.arange(n_cols))] + [
        (rng.integers(0, n_rows, n_rows), rng.integers(0, n_cols, n_cols)) for _ in range(n)]


def _mean(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    picked = matrix[np.ix_(rows, cols)]
    return float(np.nanmean(picked)) if np.isfinite(picked).any() else float("nan")


def seed_frame_mean(matrix: pd.DataFrame, seed: int = 0, n: int = 2000) -> dict:
    """Mean of a frames x seeds matrix with a 95% interval that resamples seeds and frames (hierarchical
    bootstrap), so it covers training randomness as well as the choice of frames. One seed: frames only."""
    m = matrix.dropna(how="all").to_numpy(dtype=float)
    if m.size == 0 or not np.isfinite(m).any():
        return {"value": None, "ci95": [None, None], "n": 0, "seeds": int(matrix.shape[1]), "per_seed": []}
    reps = [_mean(m, r, c) for r, c in _replicates(*m.shape, seed, n)]
    lo, hi = np.nanpercentile(reps[1:], [2.5, 97.5])
    return {"value": reps[0], "ci95": [float(lo), float(hi)], "n": int(m.shape[0]), "seeds": int(m.shape[1]),
            "per_seed": [float(np.nanmean(m[:, j])) for j in range(m.shape[1])]}


def seed_paired_delta(frames: dict[str, pd.DataFrame], a: list[str], b: list[str], column: str = HEADLINE,
                      seed: int = 0, n: int = 2000) -> dict:
    """mean(a - b), paired per seed (a[i] and b[i] share seed i: the same shots) and per frame, with the
    hierarchical 95% interval of `seed_frame_mean`."""
    diff = seed_frame_matrix(frames, a, column) - seed_frame_matrix(frames, b, column)
    out = seed_frame_mean(diff, seed, n)
    out = {"delta": out.pop("value"), **out}
    lo, hi = out["ci95"]
    out["verdict"] = ("no frames in common" if out["delta"] is None else
                      "better" if lo > 0 else "worse" if hi < 0 else "no detectable difference")
    return out


def grid_summary(frames: dict[str, pd.DataFrame], cells: dict[str, dict], seed: int = 0) -> list[dict]:
    """One row per arm and shot count: value and analysis accuracy over its seeds, with hierarchical intervals."""
    rows = []
    for arm in dict.fromkeys(c["arm"] for c in cells.values()):
        for shots in sorted({c["shots"] for c in cells.values() if c["arm"] == arm}):
            keys = [k for k, c in sorted(cells.items(), key=lambda kc: kc[1]["seed"])
                    if c["arm"] == arm and c["shots"] == shots and k in frames]
            if keys:
                rows.append({"arm": arm, "shots": shots, "models": keys, **{
                    column: seed_frame_mean(seed_frame_matrix(frames, keys, column), seed)
                    for column in (HEADLINE, "analysis_accuracy")}})
    return rows


def _crossing(shots: list[int], means: list[float], target: float) -> float:
    """The fewest shots at which the curve reaches `target`, interpolated in log shots; shots[0] when it starts at
    or above it, inf when it never does within the grid."""
    if means[0] >= target:
        return float(shots[0])
    for (s0, m0), (s1, m1) in zip(zip(shots, means), zip(shots[1:], means[1:])):
        if m0 < target <= m1:
            t = (target - m0) / (m1 - m0)
            return float(np.exp(np.log(s0) + t * (np.log(s1) - np.log(s0))))
    return float("inf")


def labels_saved(frames: dict[str, pd.DataFrame], cells: dict[str, dict], reference: list[str], arm: str,
                 column: str = HEADLINE, seed: int = 0, n: int = 2000) -> dict:
    """How many shots `arm` needs to match the reference model (vision-only at its shots, over seeds), with a 95%
    interval from the same seeds-then-frames bootstrap applied to every cell at once."""
    by_shots = {}
    for key, c in sorted(cells.items(), key=lambda kc: (kc[1]["shots"], kc[1]["seed"])):
        if c["arm"] == arm and key in frames:
            by_shots.setdefault(c["shots"], []).append(key)
    if not by_shots or not all(k in frames for k in reference):
        return {}
    shots = sorted(by_shots)
    reference_matrix = seed_frame_matrix(frames, reference, column)
    mats = [seed_frame_matrix(frames, by_shots[s], column).reindex(reference_matrix.index).to_numpy(dtype=float)
            for s in shots]
    ref = reference_matrix.to_numpy(dtype=float)
    if any(m.shape[1] != ref.shape[1] for m in mats):
        return {}
    needed = [_crossing(shots, [_mean(m, r, c) for m in mats], _mean(ref, r, c))  # the first: the sample itself
              for r, c in _replicates(*ref.shape, seed, n)]
    lo, hi = (float(q) for q in np.quantile(needed[1:], [0.025, 0.975], method="inverted_cdf"))
    ref_shots = cells[reference[0]]["shots"]
    return {"arm": arm, "reference": reference, "reference_shots": ref_shots, "target": float(np.nanmean(ref)),
            "curve": {int(s): float(np.nanmean(m)) for s, m in zip(shots, mats)},
            "shots_needed": needed[0], "ci95": [lo, hi], "grid": shots,
            "labels_saved": ref_shots - needed[0] if np.isfinite(needed[0]) else None}


def control_answer(c_vs_control: str, c_vs_b: str) -> str:
    """What C against the control says, given C against B: above a control that is itself below B, C shows that the
    real text cost less than the shuffled one, not that game knowledge beat having no pretraining."""
    if c_vs_control == "better":
        return ("C > control: the game knowledge helped" if c_vs_b == "better" else
                "C > control, but C is not above B: the shuffled text cost more than the real one, no gain over B")
    return "C < control" if c_vs_control == "worse" else \
        "C = control within the interval: no sign that game knowledge, rather than extra training, matters"


def research_answers(frames: dict[str, pd.DataFrame], named: dict[str, list[str]], margin: float, seed: int = 0,
                     steps: str = "") -> dict:
    """The research plan's two questions, on game_state value accuracy (and the analysis accuracy beside it),
    paired per seed and frame with 95% intervals over seeds and frames: is C > B, and is D no worse than B by more
    than `margin` (non-inferiority)? And the control: is C > the arm pretrained on shuffled targets, which tells
    game knowledge from extra training of any kind. `named`: 'B' -> B's model keys over the seeds."""
    if not all(name in named and all(k in frames for k in named[name]) for name in ("B", "C", "D", "control")):
        return {}

    def d(a: str, b: str) -> dict:
        out = seed_paired_delta(frames, named[a], named[b], HEADLINE, seed)
        out["analysis_accuracy"] = seed_paired_delta(frames, named[a], named[b], "analysis_accuracy", seed)
        return out

    c_b, d_b, c_ctl, ctl_b = d("C", "B"), d("D", "B"), d("C", "control"), d("control", "B")
    lo = d_b["ci95"][0]
    return {
        "C_vs_B": {**c_b, "answer": {"better": "C > B", "worse": "C < B"}.get(c_b["verdict"], "C = B within the interval")},
        "D_vs_B": {**d_b, "margin": margin,
                   "answer": (f"D is non-inferior to B (interval lower bound {lo:+.3f} > -{margin})"
                              if lo is not None and lo > -margin else
                              f"D is not shown non-inferior to B (interval lower bound {lo:+.3f} <= -{margin})")},
        "C_vs_control": {**c_ctl, "answer": control_answer(c_ctl["verdict"], c_b["verdict"])},
        "control_vs_B": ctl_b,
        "named": named,
        "steps": steps,
        "caveat": ("On the embedded default the analysis labels and the strategy pretraining text come from the same "
                   "rule strategist, so C > B there is a positive control of the transfer mechanism (text-only "
                   "pretraining reaching image-conditioned answers), not evidence about game knowledge; the control "
                   "arm, pretrained on the same text with shuffled targets, is what tells the two apart."),
        "not_yet": ("the seeds cover the strategy and control pretraining and the screenshot SFT (texts, shuffle, "
                    "shot draw, LoRA init, data order), not the perceiving base every arm starts from: it is one "
                    "run, at the top-level seed; E (GRPO) runs at the seeds of params.yaml grpo.seeds only"),
    }


# what E is compared on against the SFT cell it starts from: reading, the analysis, and the two signals its rewards add
E_COLUMNS = ("value_accuracy", "analysis_accuracy", "consistency", "grounding")


def e_against_sft(frames: dict[str, pd.DataFrame], e_cells: dict[str, dict], labels: dict[str, str],
                  seed: int = 0) -> dict:
    """Each E (one per arm of params.yaml grpo) against the SFT cell it starts from, paired per seed (E at seed s
    starts from the cell at seed s) and per frame, over every seed E ran at, with the seeds-then-frames interval
    of the research answers. One seed: the interval covers the frames only, not E's own training randomness.
    `e_cells`: grid.grpo_cells; `labels`: E's key -> 'E after B'."""
    out = {}
    for arm in dict.fromkeys(c["arm"] for c in e_cells.values()):
        keys = [k for k, c in sorted(e_cells.items(), key=lambda kc: kc[1]["seed"])
                if c["arm"] == arm and k in frames and c["sft"] in frames]
        if keys:
            sft = [e_cells[k]["sft"] for k in keys]
            out[arm] = {"label": labels[keys[0]], "e": keys, "sft": sft,
                        **{column: seed_paired_delta(frames, keys, sft, column, seed) for column in E_COLUMNS}}
    return out


def e_lines(e_vs_sft: dict | None) -> list[str]:
    """The table of `e_against_sft`: what E changed in the answers, with its interval over seeds and frames."""
    if not e_vs_sft:
        return []
    seeds = max(e[HEADLINE]["seeds"] for e in e_vs_sft.values())
    lines = ["", "What E changed in the answers: E minus the SFT cell it starts from, paired per seed and frame "
             "(points; 95% intervals resample seeds, then frames" + (
                 "; one seed, so they cover the frames only, not E's own training randomness: "
                 "`dvc exp run -S 'grpo.seeds=[0,1]'` adds one)" if seeds == 1 else ")") + ":", "",
             "| E | from | seeds x frames | " + " | ".join(FRAME_METRICS[c] for c in E_COLUMNS) + " | "
             + f"{FRAME_METRICS[HEADLINE]} per seed |", "|" + "---|" * (len(E_COLUMNS) + 4)]
    for e in e_vs_sft.values():
        head = e[HEADLINE]
        lines.append(f"| {e['label']} | {', '.join(e['sft'])} | {head['seeds']} x {head['n']} | "
                     + " | ".join(f"{_pts(e[c]['delta'])} [{_pts(e[c]['ci95'][0])}, {_pts(e[c]['ci95'][1])}]"
                                  for c in E_COLUMNS)
                     + f" | {', '.join(_pts(x) for x in head['per_seed'])} |")
    return lines


def per_field_deltas(frames: dict[str, pd.DataFrame], named: dict[str, list[str]], pairs=(("C", "B"), ("D", "B")),
                     seed: int = 0) -> dict:
    """Per game_state field, the paired difference of each pair over seeds and frames (exact-value hits)."""
    out = {}
    for a, b in pairs:
        if a in named and b in named and all(k in frames for k in named[a] + named[b]):
            out[f"{a}-{b}"] = {f: seed_paired_delta(frames, named[a], named[b], f"field:{f}", seed, n=1000)
                               for f in GAME_STATE_FIELDS if f"field:{f}" in frames[named[a][0]]}
    return out


def slices(frames: dict[str, pd.DataFrame], named: dict[str, list[str]], seed: int = 0) -> dict:
    """Value accuracy per frame source (synthetic, video, real screenshots) for each named model, over seeds."""
    out = {}
    for name, keys in named.items():
        if not all(k in frames for k in keys) or "source" not in frames[keys[0]]:
            continue
        source = frames[keys[0]]["source"]
        out[name] = {str(src): seed_frame_mean(seed_frame_matrix(frames, keys, HEADLINE)[source == src], seed, n=1000)
                     for src in sorted(source.dropna().unique())}
    return out


def _pts(x) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def research_lines(r: dict) -> list[str]:
    if not r:
        return []
    row = lambda name, q: (f"| {name} | {_pts(q['delta'])} pts [{_pts(q['ci95'][0])}, {_pts(q['ci95'][1])}] | "  # noqa: E731
                           f"{', '.join(_pts(x) for x in q['per_seed'])} | {q['seeds']} x {q['n']} | "
                           f"{_pts(q['analysis_accuracy']['delta'])} [{_pts(q['analysis_accuracy']['ci95'][0])}, "
                           f"{_pts(q['analysis_accuracy']['ci95'][1])}] | {q.get('answer', q['verdict'])} |")
    return ["", "The research questions (game_state value accuracy, paired per seed and frame; 95% intervals resample "
            f"seeds, then frames; {r['steps']}):", "",
            "| question | difference | per seed | seeds x frames | economy+importance difference | answer |",
            "|---|---|---|---|---|---|",
            row("is C (strategy pretraining + 100) better than B (100)?", r["C_vs_B"]),
            row(f"is D (strategy pretraining + 20) no worse than B by more than {100 * r['D_vs_B']['margin']:.0f} "
                "points?", r["D_vs_B"]),
            row("is C better than the control (shuffled-target pretraining + 100)?", r["C_vs_control"]),
            row("is the control better than B?", r["control_vs_B"]),
            "", r["caveat"], f"Not yet: {r['not_yet']}."]


def grid_lines(report: dict) -> list[str]:
    """The grid table, labels saved, per-field deltas and slices (report['grid'])."""
    g = report.get("grid")
    if not g:
        return []
    labels = g.get("arm_labels", {})
    names = {tuple(v): k for k, v in (g.get("named_cells") or {}).items()}
    lines = ["", f"The shots sweep ({g['steps']}; {len(g['seeds'])} seeds: {g['seeds']}; the plot: "
             "[plots/data_efficiency.png](../plots/data_efficiency.png)):", "",
             "| arm | shots | named | value accuracy [95%] | per seed | economy+importance [95%] |", "|---|---|---|---|---|---|"]
    for row in g["summary"]:
        va, an = row[HEADLINE], row["analysis_accuracy"]
        band = lambda q: f"{_pct(q['value'])} [{_pct(q['ci95'][0])}, {_pct(q['ci95'][1])}]"  # noqa: E731
        lines.append(f"| {labels.get(row['arm'], row['arm'])} | {row['shots']} | {names.get(tuple(row['models']), '')} | "
                     f"{band(va)} | {', '.join(_pct(x) for x in va['per_seed'])} | {band(an)} |")
    constant = report["rows"].get(CONSTANT)
    if constant:  # the trivial baseline beside the grid, on the same frames
        lines.append(f"| constant (baseline) | - | | {_ci(constant[HEADLINE])} | - | {_ci(constant['analysis_accuracy'])} |")
    pre = g.get("pretraining") or {}
    if pre:
        lines += ["", "Each arm's pretraining at each seed, by its val loss on the strategy val split (whole matches "
                  "held out; vision-only takes no step, so its loss is the base's, where the others start): " + "; ".join(
                      f"{labels.get(arm, arm)} " + ", ".join("-" if v is None else f"{v:.3f}" for v in losses)
                      for arm, losses in pre.items()) + "."]
    saved = g.get("labels_saved") or {}
    if saved:
        fmt = lambda x: (f"more than {max(saved['grid'])}" if not np.isfinite(x) else  # noqa: E731
                         f"{min(saved['grid'])} or fewer" if x <= min(saved["grid"]) else f"{x:.0f}")
        lines += ["", f"Labels saved: the {labels.get(saved['arm'], saved['arm'])} arm needs "
                  f"{fmt(saved['shots_needed'])} shots to match vision-only at {saved['reference_shots']} "
                  f"({_pct(saved['target'])} value accuracy; 95% interval {fmt(saved['ci95'][0])} to "
                  f"{fmt(saved['ci95'][1])} shots, interpolated in log shots between the grid's {saved['grid']})."]
    fields = g.get("per_field") or {}
    if fields:
        pairs = list(fields)
        lines += ["", "Per field (exact value, paired over seeds and frames, points [95%]):", "",
                  "| field | " + " | ".join(pairs) + " |", "|" + "---|" * (len(pairs) + 1)]
        for f in GAME_STATE_FIELDS:
            cells = [fields[p].get(f) for p in pairs]
            if any(c and c["delta"] is not None for c in cells):
                lines.append(f"| {f} | " + " | ".join(
                    "-" if not c or c["delta"] is None else f"{_pts(c['delta'])} [{_pts(c['ci95'][0])}, {_pts(c['ci95'][1])}]"
                    for c in cells) + " |")
    sl = g.get("slices") or {}
    if sl:
        sources = sorted({src for v in sl.values() for src in v})
        first = next(iter(sl.values()))
        lines += ["", "Slices by frame source (value accuracy over seeds and frames, n: the frames with a labelled "
                  "value; real: the shared screenshots, scored on the money, health and armor a person read off them; "
                  "a source with no labelled frames in the eval split has no column):", "",
                  "| model | " + " | ".join(f"{src} (n={first[src]['n']})" if src in first else src for src in sources)
                  + " |", "|" + "---|" * (len(sources) + 1)]
        for name, v in sl.items():
            lines.append(f"| {name} | " + " | ".join(_pct(v[src]["value"]) if src in v else "-" for src in sources) + " |")
    return lines


def provenance_lines(p: dict | None) -> list[str]:
    if not p:
        return []
    return ["", "Made by: " + "; ".join(f"{k}: {v}" for k, v in p.items()) + "."]


def by_chance(models: int) -> str:
    """How many of `models` that are no better than the constant would still clear it: each is tested alone, and a
    95% interval leaves 2.5% above zero. One cell of a 36-cell grid clearing it is what chance gives."""
    return (f"; each is tested alone at 95%, so of {models} models no better than the constant about "
            f"{0.025 * models:.1f} would seem to beat it by chance")


def beaten_by(names: list[str], models: int, none: str, some: str, chance: str = "") -> str:
    """One sentence of the verdict about one baseline: `none` in bold when no model beats it, else `some` with how
    many of how many models do (and, with `chance`, how many would by chance) and their names."""
    return f" **{none}**" if not names else f" {some} ({len(names)} of {models}{chance}): {', '.join(names)}."


def verdict_line(report: dict) -> str:
    """The first thing a reader sees: which models beat the constant predictor, which do not, on the game_state
    and on the analysis (economy + importance)."""
    below, above = report["models_not_beating_constant"], report["models_beating_constant"]
    models = len(below) + len(above)
    if not above:
        line = ("**No model beats the constant predictor** on game_state value accuracy (paired 95% interval "
                "above zero): " + ", ".join(below) + ".")
    elif below:
        line = (f"**Models that do not beat the constant predictor**: {', '.join(below)}. "
                f"Models that do ({len(above)} of {models}{by_chance(models)}): {', '.join(above)}.")
    else:
        line = f"Every model beats the constant predictor on game_state value accuracy: {', '.join(above)}."
    analysis = report.get("models_beating_constant_on_analysis")
    if analysis is not None:
        line += beaten_by(analysis, models, "On economy + importance no model beats the constant predictor.",
                          "On economy + importance, the models that beat the constant", by_chance(models))
    rows = report.get("rows") or {}
    real = report.get("models_beating_constant_on_real")
    if real is not None:
        n = next((r["real_margin_over_constant"]["n"] for r in rows.values() if "real_margin_over_constant" in r), 0)
        line += beaten_by(real, models, f"On the real screenshots (n={n}) no model beats the constant predictor.",
                          f"On the real screenshots (n={n}), the models that beat the constant")
    ocr = report.get("models_beating_ocr_on_its_fields")
    if ocr is not None:
        what = f"On the fields OCR reads ({', '.join(OCR_FIELDS)}; OCR {_pct(rows[OCR]['ocr_fields_accuracy'])})"
        line += beaten_by(ocr, models, f"{what}, no model beats OCR.", f"{what}, the models that beat OCR")
    hybrid = report.get("models_beating_hybrid")
    if hybrid is not None:
        what = (f"the hybrid (OCR's confident numbers in {report.get('hybrid_with') or 'a model'}'s answer; "
                f"{_pct(rows[HYBRID]['value_accuracy']['value'])}) on game_state value accuracy")
        line += beaten_by(hybrid, models, f"No model beats {what}.", f"The models that beat {what}")
    return line


# issue 15's targets for the perceiving base on held-out synthetic frames
PERCEPTION_TARGETS = {"value_accuracy": 0.80, "schema_valid": 0.95,
                      "fields": {"player_health": 0.90, "player_armor": 0.90, "player_money": 0.90}}


def perception_lines(summary: dict | None) -> list[str]:
    """The base's reading, from metrics/perception.json: held-out accuracy against its targets, met or not."""
    if not summary:
        return []
    if summary.get("skipped"):
        return ["", f"Perception pretraining skipped: {summary['skipped']}."]
    held = summary["held_out"]
    checks = [("value accuracy", held["value_accuracy"], PERCEPTION_TARGETS["value_accuracy"]),
              ("schema-valid, unconstrained", held["schema_valid"], PERCEPTION_TARGETS["schema_valid"])]
    checks += [(name, held["fields"].get(name), target) for name, target in PERCEPTION_TARGETS["fields"].items()]
    constant = summary.get("constant")  # the pool labels' per-field mode on the same held-out frames
    steps = f"{summary['steps']} steps"
    phases = summary.get("reading_phases") or []  # first phases on HUD crops alone, their fields the whole target
    if phases:
        said, last = [], 0
        for phase in phases:
            shown = ["the whole view" if crop == "view" else f"the {crop} crop alone" for crop in phase["tasks"]]
            prior = phase.get("prior", {})  # the held-out share at each field's most common value
            read = ", ".join(f"{name} {_pct(value)}" + (f" against {_pct(prior[name])} for its most common value"
                                                       if name in prior else "")
                             for name, value in phase["held_out"].items())
            said.append(f"{phase['step'] - last} reading {' and '.join(shown)}{', in turn' * (len(shown) > 1)} "
                        f"(held out then: {read})")
            last = phase["step"]
        rehearsal = (f", rehearsing the reading ({summary['reading_replay']} examples a step)"
                     if summary.get("reading_replay") else "")
        steps = (f"{summary['steps']} steps: " + ", ".join(said)
                 + f", then {summary['steps'] - last} on the full game_state{rehearsal}")
    lines = ["", f"The base (perception pretraining, {steps}, on {summary['frames']} rendered frames, "
             f"asked the research prompt on {summary['n_held_out']} held-out frames; "
             "`dvc plots show` draws the curve):", "", "| measure | reached | target | met |", "|---|---|---|---|"]
    for name, value, target in checks:
        met = "yes" if value is not None and value >= target else "no"
        reached = "-" if value is None else f"{100 * value:.1f}%"  # one decimal: 89.6% is not a met 90% target
        lines.append(f"| {name} | {reached} | {_pct(target)} | {met} |")
    if constant is not None:
        lines += ["", f"On the same held-out frames the constant answer (the per-field mode of the pool's labels) "
                  f"scores {_pct(constant)} value accuracy; the base scores {_pct(held['value_accuracy'])}."]
    short = summary.get("held_out_short_prompt")  # the same frames without the research prompt's 800-token preamble
    if short:
        lines += [f"Asked the short reading prompt instead, the base scores {_pct(short['value_accuracy'])} "
                  f"(health {_pct(short['fields'].get('player_health'))}, armor "
                  f"{_pct(short['fields'].get('player_armor'))}, money {_pct(short['fields'].get('player_money'))})."]
    return lines


def _range(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def winprob_lines(w: dict | None) -> list[str]:
    """The win-probability models from metrics/winprob.json: nested CV, outer folds only, beside their baselines."""
    if not w:
        return []
    team, screen = w["team"], w["screenshot"]
    ci = team["intervals"]
    lines = ["", f"Win probability (nested cross-validation grouped by match: {w['matches']} matches, "
             f"{w['snapshots']} snapshots, {w['outer_folds']} outer folds; model kind, features and calibration "
             "chosen inside each outer-train part; 95% intervals by resampling whole matches):", "",
             "| view | model | log loss | ROC AUC | Brier | ECE | log loss minus plain [95%] |", "|---|---|---|---|---|---|---|"]
    for view, m, plain_name in (("team", team, "plain logreg, 8 features"),
                                ("screenshot", screen, "plain logreg, alive counts + bomb + timer")):
        diff = m["intervals"]["minus_plain_logreg"]["chosen"]["log_loss"]
        for name, label, d in (("chosen", f"nested-selected ({m['final']['candidate']} on all data)", _range(diff)),
                               ("plain_logreg", plain_name, "-"), ("base_rate", "base rate", "-")):
            s = m[name]
            lines.append(f"| {view} | {label} | {s['log_loss']:.3f} {_range(m['intervals']['models'][name]['log_loss'])} | "
                         f"{s['roc_auc']:.3f} | {s['brier']:.3f} | {s['ece']:.3f} | {d} |")
    buy = team["per_moment"].get("buy_time", {})
    lines += ["", "Per moment (team view, out of fold, 95% intervals over matches; buy time = the buy-time model on "
              "freeze-end rows, knowing only money + equipment and the score, against the base rate):", "",
              "| moment | n | chosen log loss | baseline log loss (plain; buy time: base rate) | chosen AUC | chosen ECE |",
              "|---|---|---|---|---|---|"]
    for moment, m in team["per_moment"].items():
        base = "plain_logreg" if "plain_logreg" in m else "base_rate"
        ci = (m.get("intervals") or {}).get("models", {})
        band = lambda name: f" {_range(ci[name]['log_loss'])}" if name in ci else ""  # noqa: E731
        lines.append(f"| {moment} | {m['chosen']['n']} | {m['chosen']['log_loss']:.3f}{band('chosen')} | "
                     f"{m[base]['log_loss']:.3f}{band(base)} | {m['chosen']['roc_auc']:.3f} | {m['chosen']['ece']:.3f} |")
    met = {k: v[1] for k, v in w["targets"].items()}
    lines += ["", "Targets (issue 17): " + ", ".join(f"{k} {w['targets'][k][0]}: {'met' if v else 'not met'}"
                                                    for k, v in met.items())
              + (f"; the buy-time ECE is {buy['chosen']['ece']:.3f}." if buy else ".")]
    for name, f in sorted((w.get("ece_floor") or {}).items(), key=lambda kv: kv[0] != "overall"):
        lines.append(f"ECE floor ({name}): a perfectly calibrated model with these predictions, outcomes drawn once per "
                     f"round ({f['rounds']} rounds), would show ECE {f['mean']:.3f} on average [{f['ci95'][0]:.3f}, "
                     f"{f['ci95'][1]:.3f}] and meet the {f['target']} target in {f['share_meeting_target']:.0%} of draws.")
    if not w.get("beats_plain_logreg"):
        lines.append("The nested selection does not beat the plain 8-feature logistic regression on these matches: "
                     f"it chose {', '.join(sorted(set(f['chosen'] for f in team['chosen_per_fold'])))} in the outer folds.")
    return lines


def reward_change(per_step: list[float], window: int) -> dict:
    """The weighted reward's last `window` steps against its first: the difference of the means and its 95% interval
    (Welch's t over steps, each step a mean over its own prompts). Whether GRPO moved its reward is whether the
    interval leaves zero; a block of 10 steps swings by about 0.01 on its own (BENCHMARKS.md)."""
    from scipy import stats

    first, last = per_step[:window], per_step[-window:]
    diff = sum(last) / len(last) - sum(first) / len(first)
    if window < 2:
        return {"diff": diff, "ci": None, "verdict": "too few steps to tell"}
    low, high = stats.ttest_ind(last, first, equal_var=False).confidence_interval(0.95)
    return {"diff": diff, "ci": [float(low), float(high)], "verdict": _moved(low, high, "step-to-step noise")}


def reward_trend(per_step: list[float]) -> dict:
    """The weighted reward's least-squares line over every step: its rise from the first step to the last (the slope
    times the steps between them) and the rise's 95% interval (the slope's t-interval). The window comparison above
    uses two thirds of the steps at most, and a run's two ends only; the line uses every step, so a slow drift that the
    ends cannot tell from noise shows here (BENCHMARKS.md: E after B over 150 steps)."""
    from scipy import stats

    if len(per_step) < 3:
        return {"rise": None, "ci": None, "verdict": "too few steps to tell"}
    fit = stats.linregress(range(len(per_step)), per_step)
    span, half = len(per_step) - 1, stats.t.ppf(0.975, len(per_step) - 2) * fit.stderr
    low, high = (fit.slope - half) * span, (fit.slope + half) * span
    return {"rise": float(fit.slope * span), "ci": [float(low), float(high)],
            "verdict": _moved(low, high, "step-to-step noise")}


def signed_interval(value: float, ci) -> str:
    """`+0.012 [-0.004, +0.028]`: a reward's change and its 95% interval, as the report and bench_grpo.py print it;
    `+0.012 [no interval]` when too few steps or prompts gave none."""
    if not ci:
        return f"{value:+.3f} [no interval]"
    return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _moved(low: float, high: float, noise: str) -> str:
    """What a 95% interval of a reward change says: up, down, or not beyond `noise`."""
    return ("raised its reward" if low > 0 else "lowered its reward" if high < 0
            else f"did not move its reward beyond {noise}")


def paired_verdict(paired: dict | None) -> str | None:
    """The verdict on a prompt's weighted reward at its last step against its first (grpo.paired_reward_change)."""
    entry = (paired or {}).get("reward") or {}
    if not entry.get("ci"):
        return None
    return _moved(*entry["ci"], "the prompts' own spread")


def grpo_lines(grpo: dict | None) -> list[str]:
    """E's rewards over its first and last steps, whether GRPO moved the weighted reward beyond its step-to-step
    noise, by the line through every step, and on the same prompts (each prompt's last step against its first,
    paired), which takes out how hard a step's prompts were (the eval rows above say what it changed)."""
    if not grpo:
        return []
    from chimera.training.rewards import REWARDS

    signals = ["reward", *(fn.__name__ for fn in REWARDS)]  # the weighted total, then each signal in params order
    lines = ["", "E (GRPO after SFT, sampling inside the schema): mean reward over its first and last steps "
             "(weighted total, then each signal; `dvc plots show` has every step), the weighted reward's change "
             "with its 95% interval over steps (Welch), its rise along the least-squares line through every step "
             "(the slope times the run's steps, with the slope's 95% t-interval), and its change on the same prompts: "
             "each prompt's mean reward at the last step that drew it minus the first, with a 95% t-interval over "
             "prompts.", "",
             "| E | from | steps averaged | " + " | ".join(s.replace("_reward", "") for s in signals)
             + " | reward change [95%] | along every step: rise [95%] | same prompts: change [95%] |",
             "|" + "---|" * (len(signals) + 6)]
    verdicts = []
    for key, e in grpo.items():
        w = e["rewards"]
        cells = [f"{w['first'].get(s, float('nan')):.3f} -> {w['last'].get(s, float('nan')):.3f}" for s in signals]
        change = reward_change(e["per_step"], w["window"]) if e.get("per_step") else None
        said = []
        if change and change["ci"]:
            cells.append(signed_interval(change["diff"], change["ci"]))
            said.append(change["verdict"])
        else:
            cells.append("-")
        trend = reward_trend(e["per_step"]) if e.get("per_step") else None
        if trend and trend["ci"]:
            cells.append(signed_interval(trend["rise"], trend["ci"]))
            said.append(f"along every step, {trend['verdict']}")
        else:
            cells.append("-")
        paired = e.get("paired") or {}
        same = paired_verdict(paired)
        if same:
            entry = paired["reward"]
            cells.append(f"{signed_interval(entry['change'], entry['ci'])} ({paired['prompts']} prompts)")
            said.append(f"on the same prompts, {same}")
        else:
            cells.append("-")
        if said:
            verdicts.append(f"{e['label']}: {'; '.join(said)}")
        lines.append(f"| {e['label']} (seed {e['seed']}) | {e['from']} | {w['window']} | " + " | ".join(cells) + " |")
    if verdicts:
        lines += ["", ". ".join(verdicts) + "."]
    return lines


def markdown(report: dict) -> str:
    """The verdict, then the table of baselines and models, numeric HUD fields, and paired differences."""
    lines = [verdict_line(report), "",
             "Value accuracy counts only fields whose label has a value (a null label is never credited); null "
             "handling is shown separately. Intervals are 95% bootstrap over frames; margins are paired per frame.",
             "",
             "| row | kind | frames | JSON found | schema-valid | value accuracy | within tolerance | "
             "margin over constant | economy+importance | null when null | null when value | consistency | "
             "grounding | train loss first -> last |", "|" + "---|" * 14]
    for name, m in report["rows"].items():
        t = m.get("training") or {}
        loss = f"{t['first_loss']:.2f} -> {t['final_loss']:.2f}" if t.get("first_loss") is not None else "-"
        nulls = m.get("null_handling") or {}
        margin = _delta(m["margin_over_constant"]) if m.get("margin_over_constant") else "-"
        lines.append(f"| {name} | {m['kind']} | {m['n_frames']} | {_pct(m['json_validity'])} | "
                     f"{_pct(m['schema_compliance'])} | {_ci(m['value_accuracy'])} | "
                     f"{_ci(m['value_accuracy_tolerant'])} | {margin} | {_ci(m['analysis_accuracy'])} | "
                     f"{_pct(nulls.get('null_when_null'))} | {_pct(nulls.get('null_when_value'))} | "
                     f"{_pct(m['consistency']['value'])} | {_pct(m['grounding']['value'])} | {loss} |")
    lines += ["", "Numeric HUD fields (value accuracy, exact), where OCR competes:", "",
              "| row | " + " | ".join(OCR_FIELDS) + " |", "|" + "---|" * (len(OCR_FIELDS) + 1)]
    for name, m in report["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_pct(m["fields"][f]) for f in OCR_FIELDS) + " |")
    lines += research_lines(report.get("research") or {})
    lines += grid_lines(report)
    lines += grpo_lines(report.get("grpo"))
    lines += e_lines(report.get("e_vs_sft"))
    lines += perception_lines(report.get("perception"))
    lines += winprob_lines(report.get("winprob"))
    lines += ["", "Every frame beside its label and each model's answer, disagreements highlighted, worst first on "
              "request: [reports/review.html](../reports/review.html) (the `review` stage; serve the repository root "
              "with `python -m http.server` and open /reports/review.html)."]
    lines += provenance_lines(report.get("provenance"))
    free = {n: m["unconstrained"] for n, m in report["rows"].items() if m.get("unconstrained")}
    if free:
        lines += ["", "Constrained decoding (the rows above) against the same models decoding freely: a model's own JSON "
                  "discipline.", "", "| model | schema-valid constrained | schema-valid unconstrained | "
                  "value accuracy constrained | value accuracy unconstrained |", "|---|---|---|---|---|"]
        for name, f in free.items():
            m = report["rows"][name]
            lines.append(f"| {name} | {_pct(m['schema_compliance'])} | {_pct(f['schema_compliance']['value'])} | "
                         f"{_pct(m['value_accuracy']['value'])} | {_pct(f['value_accuracy']['value'])} |")
    if report["comparisons"]:
        keys = [k for k in FRAME_METRICS if k != "json_found"]
        lines += ["", "| comparison (paired, n frames) | " + " | ".join(FRAME_METRICS[k] for k in keys) + " |",
                  "|" + "---|" * (len(keys) + 1)]
        for row in report["comparisons"]:
            n = row[HEADLINE]["n"]
            lines.append(f"| {row['model']} vs {row['baseline']} (n={n}) | "
                         + " | ".join(_delta(row[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"
