"""Every demo source of a run -> canonical tables, one bad source at a time (docs/errors.md).

A source that fails (any error, not only DemoError) is one line naming its file; a readable demo with no
complete round (aim practice, warm-up) is skipped with a line too; everything else is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from chimera.demos.awpy_adapter import load_dem
from chimera.demos.canonical import DemoError, MatchTables
from chimera.demos.cs2df import load_cs2df

log = logging.getLogger("chimera.demos")


@dataclass
class Loaded:
    matches: list[MatchTables] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)    # {"file", "error"}
    skipped: list[dict] = field(default_factory=list)   # {"file", "reason"}


def load_sources(sources: list[Path], sample_every_ticks: int = 8, progress=iter) -> Loaded:
    out = Loaded()
    for path in progress(sources):
        try:
            match = load_cs2df(path) if path.suffix == ".zip" else load_dem(path, sample_every_ticks)
        except Exception as exc:  # noqa: BLE001 - one bad source fails alone, named; the batch goes on
            message = str(exc) if isinstance(exc, DemoError) else f"{path}: {type(exc).__name__}: {exc}"
            log.warning("skipped: %s", message)
            out.failed.append({"file": str(path), "error": message})
            continue
        if len(match.rounds) == 0:
            log.warning("skipped: %s: no complete rounds (aim practice or warm-up?)", path)
            out.skipped.append({"file": str(path), "reason": "no complete rounds"})
            continue
        out.matches.append(match)
    return out
