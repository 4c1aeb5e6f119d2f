"""Labels a person read off the real screenshots (data/hand_labels/real_screenshots.csv): HUD numbers, nothing else.

A row names a frame by its file in ../shared's screenshots manifest, says whether the HUD is shown, and gives the
money, health and armor a person could read. A blank is a number they could not read (covered, blurred, not
drawn), so the label does not vouch for it: the field is left out of scoring, not scored as null. A frame with the
HUD hidden shows no game state at all, so every field is known, and known to be null. The analysis and advice are
left unassessed: a person read numbers, not the round.

The record says which fields it vouches for (`known_fields`, as a GSI label does) and that its analysis is not
assessed (`analysis_assessed: false`); the evaluation scores nothing else on such a frame.
"""

from __future__ import annotations

import csv
from pathlib import Path

from chimera.prompts import PROMPT_HASH
from chimera.schema import GAME_STATE_FIELDS, GameState, numeric_range, unassessed

LABELER = "person"
FIELDS = ("player_money", "player_health", "player_armor")
COLUMNS = ("file", "hud", *FIELDS, "note")


def read_hand_labels(path: str | Path) -> dict[str, dict]:
    """file -> {"hud": bool, field: int or None, "note": str}; a malformed row raises ValueError naming the file
    and its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file of hand labels")
    out = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} (expected {', '.join(COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if row["hud"] not in ("yes", "no"):
                raise ValueError(f"{where}: hud must be yes or no, not {row['hud']!r}")
            numbers = {}
            for name in FIELDS:
                text = (row[name] or "").strip()
                try:
                    numbers[name] = int(text) if text else None
                except ValueError:
                    raise ValueError(f"{where}: {name} must be a whole number or blank, not {text!r}") from None
            if row["hud"] == "no" and any(v is not None for v in numbers.values()):
                raise ValueError(f"{where}: a frame without a HUD shows no number")
            if row["file"] in out:
                raise ValueError(f"{where}: {row['file']} is labelled twice")
            out[row["file"]] = {"hud": row["hud"] == "yes", **numbers, "note": row["note"] or ""}
    return out


def _holdable(name: str, value: int | None) -> int | None:
    """A number the schema cannot hold (money above 65,535 on a community server) is not vouched for."""
    low, high = numeric_range(name)
    if value is None or (low is not None and value < low) or (high is not None and value > high):
        return None
    return value


def hand_label(image_id: str, row: dict) -> dict:
    """A label record in the labelers' format from one row of read_hand_labels."""
    numbers = {name: _holdable(name, row[name]) for name in FIELDS}
    known = [n for n, v in numbers.items() if v is not None] if row["hud"] else list(GAME_STATE_FIELDS)
    state = GameState(**{n: v for n, v in numbers.items() if v is not None})
    return {"id": image_id, "labeler": LABELER, "model": LABELER, "prompt_hash": PROMPT_HASH,
            "analysis": unassessed(state).model_dump(mode="json"), "errors": [], "known_fields": known,
            "analysis_assessed": False, "note": row["note"]}
