"""End-to-end ``yima audit`` rate on a log the service itself wrote (SQLite file).

``bench_audit.py`` times :func:`ledger.audit.audit` on a synthetic log held in memory. This
script measures what an auditor runs: the real ingest (``api.services.ingest``, rules on)
writes ``--events`` events of the demo world's factory → distributor → pharmacy flow
(commission, pack, ship, receive, unpack, ship, receive, dispense; the workload of
``bench_ingest.py``) into a fresh SQLite file, then ``yima audit --db URL --keys FILE`` runs as
a subprocess: entries streamed from the database, every leaf hash, capture signature,
producer chain, checkpoint root, the lifecycle replay, and the comparison of the database's
projections (captures, heads, Merkle nodes, item states) with the verified log. The audit's own
"entries/s" line (timed from its first entry to its verdict) and the subprocess's wall time
(with interpreter start-up and imports) are printed for each variant, median of ``--runs``.

Variants: ``--workers 1`` (one process) and ``--workers 2`` (the lifecycle replay in a worker
process), each without and with event-ID recomputation (``--no-event-ids`` / default).

Usage: ``python bench/bench_audit_cli.py [--events N] [--runs N] [--keep DIR]``. The goal
(the "Trust" issue): ``yima audit`` ≥ 50,000 events/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_ingest as bi

from api.runtime import tune_gc
from fixtures import world
from ledger.note import Signer

_RATE = re.compile(r"([0-9,]+) entries/s")


def build(directory: Path, events: int) -> tuple[str, Path, int]:
    """Ingest ``events`` events into a SQLite file in ``directory``; returns (URL, keys file,
    log size)."""
    url = f"sqlite:///{directory / 'audit-bench.db'}"
    work = bi.make_workload(events, 1000)
    with bi.service(url) as c:
        t0 = time.perf_counter()
        bi.run_ingest(c, work)
        size = c.store.size()
        print(f"ingested {work.events} events ({size} entries) in {time.perf_counter() - t0:.1f}s")
        root_dev = world.JS_MPA.device
        keys = {
            "origin": c.settings.origin,
            "log_vkey": c.log_signer.verifier().vkey(),
            "witnesses": [],
            "quorum": 0,
            # The demo world's root of trust (fixtures/demo.py): DEMO ONLY keys.
            "regulators": [Signer(root_dev.producer, root_dev.key).vkey()],
        }
    keys_file = directory / "keys.json"
    keys_file.write_text(json.dumps(keys), encoding="utf-8")
    return url, keys_file, size


def run_audit(url: str, keys: Path, args: list[str]) -> tuple[float, float]:
    """One ``yima audit`` subprocess; returns (its own entries/s, wall seconds of the process)."""
    yima = Path(sys.executable).parent / "yima"
    cmd = [str(yima), "audit", "--db", url, "--keys", str(keys), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    m = _RATE.search(proc.stdout)
    if m is None:
        raise SystemExit(f"no rate in the audit's output:\n{proc.stdout}")
    return float(m.group(1).replace(",", "")), wall


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the database in this directory")
    args = ap.parse_args(argv)
    tune_gc()
    with tempfile.TemporaryDirectory(prefix="yima-audit-bench-") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        if args.keep and (directory / "keys.json").exists():
            url = f"sqlite:///{directory / 'audit-bench.db'}"
            keys = directory / "keys.json"
            size = -1
        else:
            url, keys, size = build(directory, args.events)
        print(
            f"{datetime.now(UTC):%Y-%m-%d}; {os.cpu_count()} CPUs; load average "
            + " / ".join(f"{x:.1f}" for x in os.getloadavg())
            + f"; {size} entries; median of {args.runs} runs"
        )
        variants = [
            ("--workers 1 --no-event-ids", ["--workers", "1", "--no-event-ids"]),
            ("--workers 2 --no-event-ids", ["--workers", "2", "--no-event-ids"]),
            ("--workers 1 (event ids)", ["--workers", "1"]),
            ("--workers 2 (event ids)", ["--workers", "2"]),
        ]
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
        for _ in range(args.runs):  # round-robin: the variants share the machine's load alike
            for name, extra in variants:
                results[name].append(run_audit(url, keys, extra))
        for name, _ in variants:
            rates = [r for r, _ in results[name]]
            walls = [w for _, w in results[name]]
            print(
                f"yima audit {name:28s} {statistics.median(rates):10,.0f} entries/s "
                f"(process wall {statistics.median(walls):.2f}s incl. start-up)"
            )
        print("load average now " + " / ".join(f"{x:.1f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
