"""Trivial baselines, scored by the same evaluation as the models, in the same run.

- constant: one answer for every frame. game_state is the per-field mode of the training labels' values
  (nulls left out: a null never scores, so the mode of the values is the strongest constant); analysis and
  advice are those of the most typical training label (the one agreeing with most of those modes).
- ocr: the OCR engine's reading of the HUD numbers (chimera.evaluation.ocr); every other field null.
- hybrid: a model's answer with the numeric fields OCR reads confidently put in its place.

Each baseline writes ordinary prediction records, so `evaluate` and the report treat them like models.
"""

from __future__ import annotations

import json
from collections import Counter

from chimera.prompts import PROMPT_HASH
from chimera.schema import GAME_STATE_FIELDS, Analysis, parse_model_output

BASELINES = ("constant", "ocr", "hybrid")


def _key(value):
    return json.dumps(value, sort_keys=True)


def constant_game_state(states: list[dict]) -> dict:
    """The per-field mode of the states' values (nulls left out)."""
    modes = {}
    for name in GAME_STATE_FIELDS:
        values = Counter(_key(state.get(name)) for state in states if state.get(name) is not None)
        modes[name] = json.loads(values.most_common(1)[0][0]) if values else None
    return modes


def constant_analysis(train_labels: list[dict]) -> dict:
    """train_labels: label Analysis dicts. Returns the constant Analysis (a valid one) as a dict."""
    if not train_labels:
        raise ValueError("constant baseline: no training labels")
    modes = constant_game_state([lab["game_state"] for lab in train_labels])
    typical = max(train_labels, key=lambda lab: sum(lab["game_state"].get(n) == modes[n] for n in GAME_STATE_FIELDS))
    return Analysis.model_validate({"game_state": modes, "analysis": typical["analysis"],
                                    "advice": typical["advice"]}).model_dump(mode="json")


def constant_record(image_id: str, analysis: dict) -> dict:
    return {"id": image_id, "model": "baseline:constant", "prompt_hash": PROMPT_HASH, "raw_text": json.dumps(analysis),
            "analysis": analysis, "json_found": True, "errors": [], "warnings": []}


def ocr_record(image_id: str, readings: dict[str, dict] | None, error: str | None = None) -> dict:
    """An OCR reading as a prediction record: only game_state numbers, so it is scored per field and is never
    schema-valid (it has no analysis or advice)."""
    state = {name: r["value"] for name, r in (readings or {}).items() if r["value"] is not None}
    return {"id": image_id, "model": "baseline:ocr", "prompt_hash": PROMPT_HASH,
            "raw_text": json.dumps({"game_state": state}), "analysis": None, "json_found": error is None,
            "errors": [error] if error else [], "warnings": [], "ocr": readings}


def hybrid_record(model_record: dict | None, ocr_record: dict, min_confidence: float, model_name: str) -> dict:
    """The model's answer with each field the OCR record read at >= min_confidence put in its place."""
    model_record = model_record or {}
    confident = {name: r["value"] for name, r in (ocr_record.get("ocr") or {}).items()
                 if r["value"] is not None and r["confidence"] >= min_confidence}
    analysis = model_record.get("analysis")
    if analysis is not None:
        merged = {**analysis, "game_state": {**analysis["game_state"], **confident}}
        analysis = Analysis.model_validate(merged).model_dump(mode="json")
        raw = json.dumps(analysis)
    else:  # the model's partial answer, field by field, with OCR's numbers over it
        fields = parse_model_output(model_record.get("raw_text") or "").game_state_fields()
        raw = json.dumps({"game_state": {**fields, **confident}})
    return {"id": ocr_record["id"], "model": f"baseline:hybrid(ocr+{model_name})", "prompt_hash": PROMPT_HASH,
            "raw_text": raw, "analysis": analysis, "json_found": True, "errors": [], "warnings": [],
            "ocr_fields_used": sorted(confident)}
