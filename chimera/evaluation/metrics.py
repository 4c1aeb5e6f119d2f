"""Predictions vs labels, field by field; self-consistency; grounding; error analysis; bootstrap CIs.

One accuracy, defined here and used everywhere (report, `chimera evaluate`, overfit, probes, GRPO rewards):
**value accuracy** is the share of fields *whose label has a value* that the prediction gets right. A field
whose label is null (the frame does not show it) is never credited: it is reported separately as null
handling, `null_when_null` (the model says null where the label is null) and `null_when_value` (the model
says null where the label has a value). Numeric fields are reported exact and within tolerance.

A frame with no prediction (a crash, an unreadable image, a server error) is scored as all-null: a miss on
every labelled field. A prediction that is JSON but not a valid Analysis is scored per field: each
game_state field that validates on its own counts. Prose scores every field as null.

A label may vouch for some fields only (`known_fields`: what GSI gives, or what a person could read): the others
are in no count, neither value accuracy nor null handling. A label whose analysis is not assessed
(`analysis_assessed: false`) scores no analysis and no grounding; self-consistency needs no label.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from chimera.schema import (GAME_STATE_FIELDS, LIST_FIELDS, NUMERIC_FIELDS, canonical_utility,
                            canonical_weapon, parse_model_output, weapon_kind)

DEFAULT_TOLERANCES = {"player_health": 5, "player_armor": 5, "player_money": 100, "team_money_total": 500,
                      "alive_teammates": 0, "alive_enemies": 0, "visible_enemies": 0}


# --------------------------------------------------------------------------------------------------
# Per-field comparison
# --------------------------------------------------------------------------------------------------

def normalise(field_name: str, value):
    if value is None:
        return None
    if field_name in ("weapon_primary", "weapon_secondary"):
        return canonical_weapon(value)
    if field_name == "map_name":
        return str(value).strip().lower()
    if field_name in LIST_FIELDS:
        return sorted(canonical_utility(v) for v in value)
    return value


def outcome(pred, truth) -> str:
    """hit | both_null | missed_null | false_value | wrong."""
    if truth is None and pred is None:
        return "both_null"
    if pred is None:
        return "missed_null"
    if truth is None:
        return "false_value"
    return "hit" if pred == truth else "wrong"


def list_prf(pred: list | None, truth: list | None) -> tuple[float, float, float]:
    """Multiset precision/recall/F1; two empty (or null) lists agree perfectly."""
    p, t = Counter(pred or []), Counter(truth or [])
    if not p and not t:
        return 1.0, 1.0, 1.0
    overlap = sum((p & t).values())
    precision = overlap / sum(p.values()) if p else 0.0
    recall = overlap / sum(t.values()) if t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def text_similarity(a: str, b: str) -> float:
    norm = lambda s: re.sub(r"[^a-z0-9 ]", "", s.lower()).strip()  # noqa: E731
    return SequenceMatcher(None, norm(a), norm(b)).ratio()


def list_overlap(pred: list[str], truth: list[str], threshold: float = 0.6) -> float:
    """F1 of greedy best matches between two lists of short phrases (normalised text similarity)."""
    if not pred and not truth:
        return 1.0
    if not pred or not truth:
        return 0.0
    matched_truth = set()
    hits = 0
    for phrase in pred:
        scores = [(text_similarity(phrase, t), j) for j, t in enumerate(truth) if j not in matched_truth]
        if scores:
            best, j = max(scores)
            if best >= threshold:
                hits += 1
                matched_truth.add(j)
    precision, recall = hits / len(pred), hits / len(truth)
    return 2 * precision * recall / (precision + recall) if hits else 0.0


# --------------------------------------------------------------------------------------------------
# Consistency rules: does the output agree with itself?
# --------------------------------------------------------------------------------------------------

def _text(analysis: dict) -> str:
    adv = analysis.get("advice") or {}
    return " ".join(str(adv.get(k) or "") for k in ("primary_action", "reasoning", "fallback", "callout"))


def rule_economy_vs_money(a: dict) -> bool | None:
    gs, eco = a["game_state"], a["analysis"]["economy_assessment"]
    kind = weapon_kind(gs.get("weapon_primary"))
    money = gs.get("player_money")
    if eco == "full-buy":
        return kind in ("rifle", "sniper") or (gs.get("round_phase") in ("buy", "freezetime") and (money or 0) >= 3700)
    if eco in ("eco", "save"):
        return kind not in ("rifle", "sniper")
    return None


def rule_importance_vs_state(a: dict) -> bool | None:
    gs, imp = a["game_state"], a["analysis"]["round_importance"]
    if imp == "unknown":  # not assessed: nothing to be consistent with
        return None
    if gs.get("alive_teammates") == 0 and (gs.get("alive_enemies") or 0) >= 1:
        return imp in ("high", "critical")  # a clutch is never a low-stakes round
    if gs.get("bomb_status") == "planted":
        return imp != "low"
    return None


def rule_bomb_vs_phase(a: dict) -> bool | None:
    gs = a["game_state"]
    bomb, phase = gs.get("bomb_status"), gs.get("round_phase")
    if bomb is None or phase is None or "unknown" in (bomb, phase):
        return None
    if bomb == "planted":
        return phase in ("post_plant", "round_end")
    if phase == "post_plant":
        return bomb in ("planted", "defused", "exploded")
    if bomb in ("defused", "exploded"):
        return phase == "round_end"
    if phase in ("buy", "freezetime", "warmup"):
        return bomb in ("carried", "not_visible", "dropped")
    return True


def rule_advice_mentions_right_site(a: dict) -> bool | None:
    gs = a["game_state"]
    if gs.get("bomb_status") != "planted" or gs.get("site") not in ("A", "B"):
        return None
    other = "B" if gs["site"] == "A" else "A"
    text = _text(a)
    mentions = lambda s: re.search(rf"\b{s}\b(?! ?(?:few|lot|bit))", text) is not None  # noqa: E731
    return not (mentions(other) and not mentions(gs["site"]))


def rule_visible_le_alive(a: dict) -> bool | None:
    gs = a["game_state"]
    if gs.get("visible_enemies") is None or gs.get("alive_enemies") is None:
        return None
    return gs["visible_enemies"] <= gs["alive_enemies"]


CONSISTENCY_RULES = {
    "economy_vs_money": rule_economy_vs_money,
    "importance_vs_state": rule_importance_vs_state,
    "bomb_vs_phase": rule_bomb_vs_phase,
    "advice_mentions_right_site": rule_advice_mentions_right_site,
    "visible_le_alive": rule_visible_le_alive,
}


def consistency(analysis: dict) -> dict[str, bool | None]:
    return {name: rule(analysis) for name, rule in CONSISTENCY_RULES.items()}


# --------------------------------------------------------------------------------------------------
# Grounding: are the facts stated in the text true of the (labelled) game state?
# --------------------------------------------------------------------------------------------------

def extract_facts(text: str) -> list[tuple[str, object]]:
    facts: list[tuple[str, object]] = []
    for us, them in re.findall(r"\b([0-5])\s*(?:v|vs|-on-|against)\s*([0-5])\b", text):
        facts.append(("numbers", (int(us), int(them))))
    for money in re.findall(r"\$\s?(\d[\d,]*)", text):
        facts.append(("player_money", int(money.replace(",", ""))))
    for hp in re.findall(r"\b(\d{1,3})\s*HP\b|health (?:at|of) (\d{1,3})", text):
        value = next(v for v in hp if v)
        facts.append(("player_health", int(value)))
    for site in re.findall(r"\b(?:bomb|site|on|retake|hit|onto|take)\s+([AB])\b", text):
        facts.append(("site", site))
    lowered = text.lower()
    for name in ("AK-47", "M4A1-S", "M4A4", "AWP", "Galil AR", "FAMAS", "Desert Eagle", "USP-S", "Glock-18", "SSG 08"):
        if name.lower() in lowered:
            facts.append(("weapon", name))
    return facts


def fact_holds(fact: tuple[str, object], gs: dict) -> bool:
    kind, value = fact
    if kind == "numbers":
        us = None if gs.get("alive_teammates") is None else gs["alive_teammates"] + 1
        return (us, gs.get("alive_enemies")) == value
    if kind == "weapon":
        return value in (gs.get("weapon_primary"), gs.get("weapon_secondary"))
    return gs.get(kind) == value


CLAIM_FIELDS = ("reasoning", "callout")  # the advice fields that describe the round; action and fallback are plans


def stated_claims(answer: dict) -> str:
    """The text of an answer that says what the round is: the situation summary and the advice's reasoning and
    callout. The primary action and the fallback say what to do: "Buy an AK-47" or "hit A" is a plan on a frame with
    no AK-47 and no site yet, not a claim that the frame shows one."""
    adv = answer.get("advice") or {}
    return " ".join([(answer.get("analysis") or {}).get("situation_summary") or "",
                     *(str(adv.get(k) or "") for k in CLAIM_FIELDS)])


FACT_FIELDS = {"numbers": ("alive_teammates", "alive_enemies"), "weapon": ("weapon_primary", "weapon_secondary")}


def fact_fields(fact: tuple[str, object]) -> tuple[str, ...]:
    """The game_state fields a fact is checked on (a money fact: player_money; an XvX: both alive counts)."""
    return FACT_FIELDS.get(fact[0], (fact[0],))


def grounding(pred: dict, truth_state: dict, known: list[str] | None = None) -> tuple[int, int]:
    """(facts that hold, facts stated) in the prediction's claims (`stated_claims`), checked on the true state. A
    fact about a field the label does not vouch for (`known`: a GSI label knows no alive counts) is not checked:
    its null there means "not known", not "not so"."""
    facts = [f for f in extract_facts(stated_claims(pred)) if known is None or set(fact_fields(f)) <= set(known)]
    return sum(fact_holds(f, truth_state) for f in facts), len(facts)


def winprob_agreement(pred: dict, p_win: float | None, tolerance: float = 0.15) -> bool | None:
    """A stated win chance ("64% to win") agrees with the demo-trained model within the tolerance."""
    if p_win is None:
        return None
    match = re.search(r"(\d{1,3})\s?%", pred["analysis"].get("situation_summary", "") + " " + _text(pred))
    return None if not match else abs(int(match.group(1)) / 100 - p_win) <= tolerance


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------

@dataclass
class FrameScore:
    id: str
    slice: dict
    valid: bool
    json_found: bool
    outcomes: dict = field(default_factory=dict)       # field -> outcome
    abs_error: dict = field(default_factory=dict)      # numeric field -> |pred - truth| when both known
    within_tol: dict = field(default_factory=dict)
    list_f1: dict = field(default_factory=dict)
    pairs: dict = field(default_factory=dict)          # field -> (truth, pred)
    analysis_hits: dict = field(default_factory=dict)
    analysis_assessed: bool = True                     # false: the label judges no analysis (a person's numbers)
    consistency: dict = field(default_factory=dict)
    grounded: tuple = (0, 0)
    winprob_agrees: bool | None = None


def score_frame(image_id: str, pred_record: dict | None, label_record: dict, tolerances: dict,
                slice_info: dict | None = None, p_win: float | None = None) -> FrameScore:
    pred = (pred_record or {}).get("analysis")
    truth = label_record["analysis"]
    record = pred_record or {}
    # schema compliance is the model's own discipline: an answer the parser had to repair or trim is not valid
    valid = bool(record.get("schema_valid", pred is not None)) and pred is not None
    score = FrameScore(image_id, slice_info or {}, valid, bool(record.get("json_found", pred is not None)))
    if pred is not None:
        pgs = pred.get("game_state") or {}
    else:  # JSON that is not a valid Analysis still earns credit for each field that is valid and right
        pgs = parse_model_output((pred_record or {}).get("raw_text") or "").game_state_fields()
    tgs = truth["game_state"]
    known = label_record.get("known_fields")  # None: the label vouches for every field (truth, Claude)
    for name in GAME_STATE_FIELDS:
        if known is not None and name not in known:  # its null means "not read", not "not shown": not scored
            score.outcomes[name] = UNASSESSED
            continue
        p, t = normalise(name, pgs.get(name)), normalise(name, tgs.get(name))
        if name in LIST_FIELDS:
            score.list_f1[name] = list_prf(p, t)
            score.outcomes[name] = outcome(p, t)
            continue
        score.outcomes[name] = outcome(p, t)
        score.pairs[name] = (t, p)
        if name in NUMERIC_FIELDS and p is not None and t is not None:
            score.abs_error[name] = abs(p - t)
            score.within_tol[name] = abs(p - t) <= tolerances.get(name, 0)
    score.analysis_assessed = label_record.get("analysis_assessed", True)
    if pred is not None and score.analysis_assessed:  # a label that reads numbers alone judges no analysis
        for name in ("economy_assessment", "round_importance"):
            score.analysis_hits[name] = float(pred["analysis"][name] == truth["analysis"][name])
        for name in ("immediate_threats", "opportunities"):
            score.analysis_hits[name] = list_overlap(pred["analysis"][name], truth["analysis"][name])
        score.grounded = grounding(pred, tgs, known)
        score.winprob_agrees = winprob_agreement(pred, p_win)
    if pred is not None:  # the answer against itself: no label needed
        score.consistency = consistency(pred)
    return score


LABELLED = ("hit", "missed_null", "wrong")  # outcomes of a field whose label has a value
NULL_LABELLED = ("both_null", "false_value")  # outcomes of a field whose label is null: the frame does not show it
UNASSESSED = "unassessed"  # a field the label does not vouch for (`known_fields`): in no count


def scored_pairs(scores: list[FrameScore], name: str) -> list[tuple]:
    """(label, prediction) of a field over the frames whose label vouches for it."""
    return [s.pairs[name] for s in scores if name in s.pairs]


def field_hit(score: FrameScore, name: str, tolerant: bool = False) -> bool:
    """Right on a labelled field: exact, or (tolerant) within the field's tolerance."""
    return score.outcomes[name] == "hit" or (tolerant and score.within_tol.get(name, False))


def frame_value_accuracy(score: FrameScore, tolerant: bool = False) -> float:
    """THE accuracy of one frame: share of its labelled game_state fields the prediction gets right (nan when
    the label has no value at all)."""
    known = [n for n in GAME_STATE_FIELDS if score.outcomes[n] in LABELLED]
    return float(np.mean([field_hit(score, n, tolerant) for n in known])) if known else float("nan")


def frame_rows(scores: list[FrameScore]) -> list[dict]:
    """One row per frame, for paired comparisons between models on the same frames (the report stage).

    value_accuracy counts only fields the label has a value for, so answering null everywhere earns nothing.
    """
    rows = []
    for s in scores:
        checks = [v for v in s.consistency.values() if v is not None]
        rows.append({"id": s.id, "source": s.slice.get("source"), "height": s.slice.get("height"),
                     "json_found": float(s.json_found), "valid": float(s.valid),
                     "value_accuracy": frame_value_accuracy(s),
                     "value_accuracy_tolerant": frame_value_accuracy(s, tolerant=True),
                     **{f"field:{n}": float(field_hit(s, n)) if s.outcomes[n] in LABELLED else np.nan
                        for n in GAME_STATE_FIELDS},
                     "analysis_accuracy": float(np.mean([s.analysis_hits.get(n, 0.0)
                                                         for n in ("economy_assessment", "round_importance")]))
                     if s.analysis_assessed else np.nan,
                     "consistency": float(np.mean(checks)) if checks else np.nan,
                     "grounding": s.grounded[0] / s.grounded[1] if s.grounded[1] else np.nan})
    return rows


def bootstrap_ci(values: np.ndarray, n: int = 1000, seed: int = 0, stat=np.mean) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    samples = stat(values[rng.integers(0, len(values), (n, len(values)))], axis=1)
    return (float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5)))


def _with_ci(values, seed) -> dict:
    values = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(values, seed=seed)
    clean = values[~np.isnan(values)]
    return {"value": float(clean.mean()) if len(clean) else float("nan"), "ci95": [lo, hi], "n": int(len(clean))}


def verdict(pairs: list[tuple], numeric: bool, min_errors: int = 3, modal_share: float = 0.6) -> dict:
    """Systematic vs random errors for one field.

    Categorical: errors are systematic when one (truth -> prediction) confusion per true value explains at
    least `modal_share` of them (the same wrong weapon for the same true weapon). Numeric: systematic when the
    mean signed error is large against its spread (a bias), random otherwise.
    """
    errors = [(t, p) for t, p in pairs if t is not None and p is not None and t != p]
    if not errors:
        return {"verdict": "no errors", "errors": 0}
    if len(errors) < min_errors:
        return {"verdict": "too few errors", "errors": len(errors)}
    if numeric:
        diffs = np.array([p - t for t, p in errors], dtype=float)
        bias, spread = float(diffs.mean()), float(diffs.std())
        kind = "systematic" if abs(bias) > max(spread, 1e-9) * 0.5 else "random"
        return {"verdict": kind, "errors": len(errors), "mean_error": bias, "std_error": spread}
    by_truth: dict = {}
    for t, p in errors:
        by_truth.setdefault(t, Counter())[p] += 1
    explained = sum(c.most_common(1)[0][1] for c in by_truth.values() if sum(c.values()) >= 2)
    share = explained / len(errors)
    top = Counter(errors).most_common(3)
    return {"verdict": "systematic" if share >= modal_share else "random", "errors": len(errors),
            "modal_share": round(share, 3), "top_confusions": [[str(t), str(p), n] for (t, p), n in top]}


def confusion(pairs: list[tuple]) -> list[dict]:
    counts = Counter((str(t), str(p)) for t, p in pairs)
    return [{"actual": t, "predicted": p, "count": n} for (t, p), n in sorted(counts.items())]


def summarise(scores: list[FrameScore], seed: int = 0) -> dict:
    """Headline numbers with bootstrap CIs, per-field table, analysis, consistency, grounding, verdicts."""
    out: dict = {"n_frames": len(scores)}
    out["json_validity"] = _with_ci([s.json_found for s in scores], seed)
    out["schema_compliance"] = _with_ci([s.valid for s in scores], seed)
    fields = {}
    for name in GAME_STATE_FIELDS:
        labelled = [s for s in scores if s.outcomes[name] in LABELLED]
        null_label = [s for s in scores if s.outcomes[name] in NULL_LABELLED]
        row = {"value_accuracy": _with_ci([field_hit(s, name) for s in labelled] or [np.nan], seed),
               "labelled": len(labelled),
               "null_when_null": _rate(sum(s.outcomes[name] == "both_null" for s in null_label), len(null_label)),
               "null_when_value": _rate(sum(s.outcomes[name] == "missed_null" for s in labelled), len(labelled)),
               **{k: sum(s.outcomes[name] == k for s in scores)
                  for k in ("hit", "both_null", "missed_null", "false_value", "wrong")}}
        if name in NUMERIC_FIELDS:
            errs = [s.abs_error[name] for s in scores if name in s.abs_error]
            row["mae"] = float(np.mean(errs)) if errs else None
            row["within_tolerance"] = _with_ci([field_hit(s, name, True) for s in labelled] or [np.nan], seed)
        if name in LIST_FIELDS:
            prf = np.array([s.list_f1[name] for s in scores if name in s.list_f1]).reshape(-1, 3)
            row.update(precision=float(prf[:, 0].mean()) if len(prf) else None,
                       recall=float(prf[:, 1].mean()) if len(prf) else None,
                       f1=_with_ci(prf[:, 2] if len(prf) else [], seed))
        else:
            row["errors"] = verdict(scored_pairs(scores, name), name in NUMERIC_FIELDS)
        fields[name] = row
    out["fields"] = fields
    out["value_accuracy"] = _with_ci([frame_value_accuracy(s) for s in scores] or [np.nan], seed)
    out["value_accuracy_tolerant"] = _with_ci([frame_value_accuracy(s, True) for s in scores] or [np.nan], seed)
    both = sum(s.outcomes[n] == "both_null" for s in scores for n in GAME_STATE_FIELDS)
    null_labels = sum(s.outcomes[n] in NULL_LABELLED for s in scores for n in GAME_STATE_FIELDS)
    missed = sum(s.outcomes[n] == "missed_null" for s in scores for n in GAME_STATE_FIELDS)
    labelled = sum(s.outcomes[n] in LABELLED for s in scores for n in GAME_STATE_FIELDS)
    out["null_handling"] = {"null_when_null": _rate(both, null_labels), "null_when_value": _rate(missed, labelled),
                            "null_labels": null_labels, "labelled_values": labelled}
    out["analysis"] = {name: _with_ci([s.analysis_hits.get(name, 0.0) for s in scores if s.analysis_assessed], seed)
                       for name in ("economy_assessment", "round_importance", "immediate_threats", "opportunities")}
    out["consistency"] = {}
    for rule in CONSISTENCY_RULES:
        applied = [s.consistency[rule] for s in scores if s.consistency.get(rule) is not None]
        out["consistency"][rule] = {"applicable": len(applied), "passed": int(sum(applied)),
                                    "rate": (sum(applied) / len(applied)) if applied else None}
    all_rules = [v for s in scores for v in s.consistency.values() if v is not None]
    out["consistency_rate"] = _with_ci(all_rules if all_rules else [np.nan], seed)
    held, stated = sum(s.grounded[0] for s in scores), sum(s.grounded[1] for s in scores)
    per_frame = [s.grounded[0] / s.grounded[1] for s in scores if s.grounded[1]]
    out["grounding"] = {**_with_ci(per_frame if per_frame else [np.nan], seed), "facts_held": held, "facts_stated": stated}
    agree = [s.winprob_agrees for s in scores if s.winprob_agrees is not None]
    out["winprob_agreement"] = {"rate": (sum(agree) / len(agree)) if agree else None, "n": len(agree)}
    return out


def _mean_known(values: list[float]) -> float | None:
    """Mean over the non-nan values (frames whose label has no value drop out); None when none is left."""
    known = [v for v in values if v == v]
    return float(np.mean(known)) if known else None


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def slices(scores: list[FrameScore]) -> dict:
    """Value accuracy and schema compliance per source and per resolution."""
    out: dict = {}
    for key in ("source", "height"):
        groups: dict = {}
        for s in scores:
            groups.setdefault(str(s.slice.get(key)), []).append(s)
        out[key] = {g: {"n": len(v), "schema_compliance": float(np.mean([s.valid for s in v])),
                        "value_accuracy": _mean_known([frame_value_accuracy(x) for x in v])}
                    for g, v in sorted(groups.items())}
    return out


def evaluate(predictions: dict[str, dict], labels: dict[str, dict], tolerances: dict | None = None,
             frame_info: dict[str, dict] | None = None, p_wins: dict[str, float] | None = None,
             seed: int = 0) -> tuple[dict, list[FrameScore]]:
    """predictions/labels: id -> record. Every labelled id is scored; a missing prediction scores as invalid."""
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    scores = [score_frame(i, predictions.get(i), label, tolerances, (frame_info or {}).get(i), (p_wins or {}).get(i))
              for i, label in sorted(labels.items()) if label.get("analysis")]
    summary = summarise(scores, seed)
    summary["slices"] = slices(scores)
    summary["missing_predictions"] = sum(1 for i in labels if i not in predictions)
    return summary, scores


