"""Shared fixtures.

Outside test data (GS1 and transparency-dev vectors) is read from the team's shared folder
beside the repository (``../shared/vectors``); it is never copied into the project. Where that
folder is absent the tests that need it skip and say why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_VECTORS_ENV = "YIMA_VECTORS"


def shared_vectors() -> Path | None:
    """Locate ../shared/vectors (or $YIMA_VECTORS), or None when absent."""
    override = os.environ.get(_VECTORS_ENV)
    candidates = [Path(override)] if override else []
    candidates.append(REPO.parent / "shared" / "vectors")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The shared vectors folder; skips the test with a clear reason where it is missing."""
    found = shared_vectors()
    if found is None:
        pytest.skip(
            "shared test vectors not found: expected ../shared/vectors beside the repository "
            f"(or set ${_VECTORS_ENV}); outside vectors are never copied into the project"
        )
    return found
