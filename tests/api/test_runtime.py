"""api.runtime.tune_gc: thresholds raised by the long-running commands, off by setting."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.runtime import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_raises_thresholds_and_freezes() -> None:
    gc.set_threshold(700, 10, 10)
    assert tune_gc(environ={}) is True
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restore_gc")
@pytest.mark.parametrize("value", ["0", "false", "No "])
def test_tune_gc_can_be_turned_off(value: str) -> None:
    gc.set_threshold(700, 10, 10)
    assert tune_gc(environ={"YIMA_GC_TUNING": value}) is False
    assert gc.get_threshold() == (700, 10, 10)


def test_importing_the_service_leaves_the_collector_alone() -> None:
    # Only the commands tune it; a library import must not change process-wide settings.
    import subprocess
    import sys

    code = "import gc, api.app, api.cli, ledger.audit; print(gc.get_threshold())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(700, 10, 10)"
