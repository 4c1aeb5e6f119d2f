"""GRPO reward signals: plain functions of (completions, **row), as trl calls them.

Each returns one float in [0, 1] per completion. Dataset columns reach them as keyword arguments:
`label` (the label's Analysis as a JSON string) and `p_win` (the demo-trained win probability for the
player's side, or None). Weights live in params.yaml (`grpo.reward_weights`), in the order of REWARDS.
"""

from __future__ import annotations

import json
import re

from chimera.evaluation.metrics import (CLAIM_FIELDS, DEFAULT_TOLERANCES, consistency, extract_facts, fact_holds,
                                        frame_value_accuracy, grounding, score_frame, text_similarity,
                                        winprob_agreement)
from chimera.schema import UTILITY, parse_model_output

ACTION_WORDS = re.compile(r"\b(hold|retake|execute|rotate|plant|defuse|push|peek|save|buy|trade|smoke|flash|molly|"
                          r"molotov|nade|take|hit|fall back|play|wait|group|stack|lurk|cover|anchor)\b", re.I)


def _text(completion) -> str:
    """trl passes conversational completions as [{"role": "assistant", "content": str}]."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") if isinstance(m.get("content"), str) else
                       "".join(p.get("text", "") for p in m.get("content", [])) for m in completion)
    return str(completion)


def _label(value) -> dict | None:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def _parsed(completions):
    return [parse_model_output(_text(c)) for c in completions]


def format_reward(completions, **row) -> list[float]:
    """Dense: 1.0 for a schema-valid Analysis as written (nothing dropped, closed or repaired); 0.2 for a JSON
    object + 0.2 per section that validates (max 0.8); 0.1 for an opening brace; 0 for prose. Partial credit
    gives a weak model's samples different rewards."""
    out = []
    for completion, result in zip(completions, _parsed(completions)):
        if result.schema_valid:
            out.append(1.0)
        elif result.json_found:
            out.append(0.2 + 0.2 * sum(result.sections_valid().values()))
        else:
            out.append(0.1 if "{" in _text(completion) else 0.0)
    return out


def perception_reward(completions, label=None, **row) -> list[float]:
    """The evaluation's value accuracy of the completion (labelled fields only, numbers within the evaluation's
    tolerances counted right); 0 for output that answers no field, or a label with no value to check."""
    labels = label if isinstance(label, list) else [label] * len(completions)
    out = []
    for completion, lab in zip(completions, labels):
        truth = _label(lab)
        if truth is None:
            out.append(0.0)
            continue
        score = score_frame("", {"analysis": None, "raw_text": _text(completion)}, {"analysis": truth},
                            DEFAULT_TOLERANCES)
        accuracy = frame_value_accuracy(score, tolerant=True)
        out.append(0.0 if accuracy != accuracy else accuracy)  # nan: the label has no value to check
    return out


def consistency_reward(completions, **row) -> list[float]:
    """Share of the applicable self-consistency rules the output passes (0 when it does not parse). When no rule
    applies (an answer that leaves the fields the rules read null) the reward is neutral, 0.5, not 1.0: saying
    nothing checkable must not outscore a checkable answer that is partly consistent."""
    out = []
    for result in _parsed(completions):
        if not result.ok:
            out.append(0.0)
            continue
        checks = [v for v in consistency(result.analysis.model_dump(mode="json")).values() if v is not None]
        out.append(sum(checks) / len(checks) if checks else 0.5)
    return out


def grounding_reward(completions, label=None, **row) -> list[float]:
    """The evaluation's grounding: the share of the facts the answer claims (its summary, the advice's reasoning and
    callout: an XvX, money, health, a site, a weapon) that hold on the label's game_state. Neutral, 0.5, when the
    answer states none, as consistency is: a true fact scores above silence and a false one below it. 0 for output
    that does not parse.

    Consistency checks the text against the answer's own game_state; this checks it against the frame, so a model
    cannot raise it by agreeing with a misreading."""
    labels = label if isinstance(label, list) else [label] * len(completions)
    out = []
    for result, lab in zip(_parsed(completions), labels):
        truth = _label(lab)
        if not result.ok or truth is None:
            out.append(0.0)
            continue
        held, stated = grounding(result.analysis.model_dump(mode="json"), truth["game_state"])
        out.append(held / stated if stated else 0.5)
    return out


def strategy_reward(completions, label=None, p_win=None, **row) -> list[float]:
    """Economy and round importance agree with the label; the stated odds or XvX agree with the state."""
    labels = label if isinstance(label, list) else [label] * len(completions)
    p_wins = p_win if isinstance(p_win, list) else [p_win] * len(completions)
    out = []
    for result, lab, pw in zip(_parsed(completions), labels, p_wins):
        truth = _label(lab)
        if not result.ok or truth is None:
            out.append(0.0)
            continue
        a = result.analysis.model_dump(mode="json")
        score = 0.35 * (a["analysis"]["economy_assessment"] == truth["analysis"]["economy_assessment"])
        score += 0.35 * (a["analysis"]["round_importance"] == truth["analysis"]["round_importance"])
        agrees = winprob_agreement(a, pw)
        if agrees is None:  # no stated odds: judge the XvX it states, if any
            numbers = [f for f in extract_facts(a["analysis"]["situation_summary"]) if f[0] == "numbers"]
            agrees = all(fact_holds(f, truth["game_state"]) for f in numbers) if numbers else False
        out.append(score + 0.3 * bool(agrees))
    return out


def advice_reward(completions, label=None, **row) -> list[float]:
    """Actionable and grounded: names an action/site/utility, states true facts, is not the summary again,
    and is of sensible length."""
    labels = label if isinstance(label, list) else [label] * len(completions)
    utility_words = [u.split()[0].lower() for u in UTILITY]
    out = []
    for result, lab in zip(_parsed(completions), labels):
        truth = _label(lab)
        if not result.ok:
            out.append(0.0)
            continue
        adv = result.analysis.advice
        action = adv.primary_action
        score = 0.0
        if ACTION_WORDS.search(action) or re.search(r"\b[AB]\b", action) or any(w in action.lower() for w in utility_words):
            score += 0.3
        facts = extract_facts(" ".join(getattr(adv, k) or "" for k in CLAIM_FIELDS))  # the plan itself states no fact
        if truth is not None and facts:
            score += 0.3 * sum(fact_holds(f, truth["game_state"]) for f in facts) / len(facts)
        elif truth is not None:
            score += 0.15  # nothing checkable stated: half credit
        if text_similarity(action, result.analysis.analysis.situation_summary) < 0.6:
            score += 0.2
        if 2 <= len(action.split()) <= 20 and len(adv.reasoning.split()) <= 60:
            score += 0.2
        out.append(round(score, 4))
    return out


REWARDS = [format_reward, perception_reward, consistency_reward, strategy_reward, advice_reward, grounding_reward]
