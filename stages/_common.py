"""What every stage script shares: params, logging, the repository root."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from chimera.io import load_params  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def params(section: str | None = None) -> dict:
    p = load_params(ROOT / "params.yaml")
    return p if section is None else p[section]


def log(name: str) -> logging.Logger:
    return logging.getLogger(name)
