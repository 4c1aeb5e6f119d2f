"""Review flags: a reviewer's export from the page -> the open-flags file the pipeline reads, and a relabel list.

The split stage reads the open flags (`review.flags`): with `review.flagged_labels: exclude` a flagged label goes to
no split while its flag is open; with `keep` it stays, with a warning. `chimera review --apply-flags` writes them.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path


def read_flags_export(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        flags = data["flags"]
        if not isinstance(flags, list) or not all(isinstance(f, dict) and isinstance(f.get("id"), str) for f in flags):
            raise ValueError("every flag needs a string id")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a review flags export ({type(exc).__name__}: {exc})") from None
    return flags


def apply_flags(export: str | Path, open_flags: str | Path, labels: dict[str, dict]) -> dict:
    """Merge an export into the open-flags file (data/review/flags.json); return the relabel list: every open flag
    with its labeler, so Claude labels can be re-labeled (truth labels are exact: a flag on one is a renderer bug)."""
    from chimera.io import write_json

    open_flags = Path(open_flags)
    current = json.loads(open_flags.read_text()) if open_flags.exists() else {"flags": []}
    by_id = {f["id"]: f for f in current.get("flags", [])}
    unknown = []
    for flag in read_flags_export(export):
        if flag["id"] not in labels:
            unknown.append(flag["id"])
            continue
        by_id[flag["id"]] = {"id": flag["id"], "note": str(flag.get("note") or ""), "status": "open",
                             "labeler": labels[flag["id"]].get("labeler", ""),
                             "flagged_at": flag.get("flagged_at") or _dt.datetime.now(_dt.timezone.utc).isoformat()}
    write_json(open_flags, {"flags": sorted(by_id.values(), key=lambda f: f["id"])})
    relabel = [f for f in by_id.values() if f["status"] == "open"]
    return {"open": len(relabel), "claude": [f["id"] for f in relabel if f["labeler"] != "truth"],
            "truth": [f["id"] for f in relabel if f["labeler"] == "truth"], "unknown": unknown}


def open_flag_ids(path: str | Path) -> set[str]:
    path = Path(path)
    if not path.exists():
        return set()
    return {f["id"] for f in json.loads(path.read_text()).get("flags", []) if f.get("status", "open") == "open"}
