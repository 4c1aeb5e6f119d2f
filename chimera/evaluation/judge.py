"""Optional LLM judge: Claude grades each prediction's reasoning against the label with a fixed rubric.

Offline (no key) it is skipped with a note in the metrics, never faked.
"""

from __future__ import annotations

import json

RUBRIC = """Grade the predicted Counter-Strike 2 analysis against the reference (the true game state and a
reference analysis). Score each criterion from 1 (poor) to 5 (excellent):
- grounding: every fact the prediction states (numbers, weapons, bomb, site) is true of the reference state;
- soundness: the strategic reading (economy, round importance, threats) is what a pro would say;
- actionability: the advice is concrete (a site, position or utility) and fits the situation.
Call the grade tool once."""
GRADE_TOOL = {"name": "grade", "description": "Record the grades.", "input_schema": {
    "type": "object", "additionalProperties": False, "required": ["grounding", "soundness", "actionability"],
    "properties": {k: {"type": "integer", "minimum": 1, "maximum": 5} for k in ("grounding", "soundness", "actionability")}}}


def judge_one(client, model: str, prediction: dict, reference: dict) -> dict:
    message = client.messages.create(
        model=model, max_tokens=256, system=[{"type": "text", "text": RUBRIC, "cache_control": {"type": "ephemeral"}}],
        tools=[GRADE_TOOL], tool_choice={"type": "tool", "name": "grade"},
        messages=[{"role": "user", "content": f"Reference:\n{json.dumps(reference)}\n\nPrediction:\n{json.dumps(prediction)}"}])
    block = next(b for b in message.content if getattr(b, "type", None) == "tool_use")
    return {k: int(block.input[k]) for k in ("grounding", "soundness", "actionability")}


def judge_predictions(predictions: dict, labels: dict, model: str = "claude-opus-5", client=None) -> dict:
    from chimera.labeling.claude import ClaudeConfig, MissingKeyError, make_client

    try:
        client = client or make_client(ClaudeConfig(model=model))
    except MissingKeyError as exc:
        return {"skipped": str(exc).split(":")[0]}
    grades = [judge_one(client, model, predictions[i]["analysis"], labels[i]["analysis"])
              for i in sorted(labels) if (predictions.get(i) or {}).get("analysis")]
    if not grades:
        return {"skipped": "no valid predictions to judge"}
    return {"n": len(grades), "rubric": RUBRIC,
            **{k: sum(g[k] for g in grades) / len(grades) for k in ("grounding", "soundness", "actionability")}}
