"""The benchmarks still run (tiny sizes), so they cannot rot between full measurement runs.

Each bench runs as a script, the way `make bench` and docs/PERFORMANCE.md run it. PostgreSQL is
skipped here (``--no-pg``): the benches' PostgreSQL paths are exercised by the full runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_bench_ingest_quick() -> None:
    out = _run("bench_ingest.py", "--quick", "--no-pg", "--http", "--floor")
    assert "sqlite   raw insert" in out and "x raw" in out and "http" in out
    # The floor replays ingest's own write statements: several tables, every transaction.
    floor = re.search(r"its ([\d,]+) write statements in (\d+) transactions", out)
    assert floor is not None and int(floor[2]) >= 2, out
    assert re.search(r"sqlite   write floor: [\d,]+ ev/s vs ingest", out), out
    # The --processes tier (default 2): processes at once, then writers taking turns, whose
    # state caches were kept (hits) across each other's appends.
    assert "sqlite   2 processes:" in out and "sqlite   2 writers taking turns" in out
    caches = re.search(r"hits/misses/rechecked/stale (\d+)/\d+/(\d+)/\d+", out)
    assert caches is not None and int(caches[1]) > 0 and int(caches[2]) > 0, out


@pytest.mark.slow
def test_bench_provenance_quick() -> None:
    out = _run("bench_provenance.py", "--quick", "--no-pg", "--http", "--queries", "20")
    # The labels are padded to line up; what matters is that both tiers report p50 and p99.
    assert re.search(r"history \(service\)\s*: p50 [\d.]+ ms \| p99", out), out
    assert re.search(r"history \(HTTP\)\s*: p50 [\d.]+ ms \| p99", out), out
