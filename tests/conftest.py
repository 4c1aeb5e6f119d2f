import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CHIMERA_SHARED", ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data").exists():
        pytest.fail(f"{SHARED}/data is missing: CI and tests expect ../shared beside the checkout")
    return SHARED


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end test first: under `make test` (two workers, work stealing, which hands each worker a run of
    tests in collection order) it starts at once on one worker while the other takes the rest, instead of starting
    last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
