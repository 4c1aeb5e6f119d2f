"""Labels and predictions on disk: one JSON per frame id plus a flat Parquet table for evaluation.

A record: {id, labeler|backend, model, prompt_hash, analysis (Analysis JSON or null), errors, ...}.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from chimera.io import read_json, write_json, write_parquet
from chimera.schema import GAME_STATE_FIELDS


def flatten(record: dict) -> dict:
    analysis = record.get("analysis") or {}
    gs, an, adv = analysis.get("game_state") or {}, analysis.get("analysis") or {}, analysis.get("advice") or {}
    row = {"id": record["id"], "model": record.get("model"), "prompt_hash": record.get("prompt_hash"),
           "valid": bool(analysis), "errors": "; ".join(record.get("errors") or [])}
    for name in GAME_STATE_FIELDS:
        value = gs.get(name)
        row[f"gs_{name}"] = json.dumps(value) if isinstance(value, list) else value
    for name in ("situation_summary", "economy_assessment", "round_importance"):
        row[f"an_{name}"] = an.get(name)
    for name in ("immediate_threats", "opportunities"):
        row[f"an_{name}"] = json.dumps(an.get(name) or [])
    for name in ("primary_action", "reasoning", "fallback", "callout"):
        row[f"adv_{name}"] = adv.get(name)
    return row


def write_records(folder: str | Path, records: list[dict], table: str | Path | None = None) -> pd.DataFrame:
    folder = Path(folder)
    for record in records:
        write_json(folder / f"{record['id']}.json", record)
    df = pd.DataFrame([flatten(r) for r in records])
    if table is not None:
        write_parquet(table, df)
    return df


def load_records(folder: str | Path) -> dict[str, dict]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of records")
    return {p.stem: read_json(p) for p in sorted(folder.glob("*.json")) if not p.name.startswith("_")}  # _run.json: counts
