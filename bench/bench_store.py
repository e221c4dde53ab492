"""Store benchmark: what the sequencer costs on top of a bare insert of the same leaves.

For N entries with ~600-byte leaves, in batches of 1000 (one transaction per batch):

* ``raw``      SQLAlchemy Core executemany into ``entries`` only (the floor);
* ``integrate`` :meth:`Sequencer.integrate` of the same leaves (entries + Merkle nodes + CAS +
  a signed checkpoint per batch);
* ``integrate+index`` the same with one item-event row and one item-state upsert per entry
  (what an ordinary scan event carries).

Each case runs on a fresh database (SQLite WAL file; PostgreSQL schema if reachable), median of
5 runs. Usage: ``python bench/bench_store.py [N]``; ``YIMA_BENCH_PG_URL`` overrides the
PostgreSQL URL.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert, text

from api.store import ItemUpdate, PendingEntry, Sequencer, make_engine, make_leaf, upgrade
from api.store import tables as t
from api.store.db import normalize_url, write_transaction
from ledger import merkle
from ledger.note import Signer
from ledger.signing import PrivateKey

BATCH = 1000
RUNS = 5
PG_URL = os.environ.get("YIMA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def make_entries(n: int, *, index: bool) -> list[PendingEntry]:
    out = []
    for i in range(n):
        event_id = f"ni:///sha-256;{i:064x}?ver=CBV2.0"
        code = f"https://id.gs1.org/01/09506000134352/21/S{i:010d}"
        leaf = make_leaf(
            "event",
            {
                "event_id": event_id,
                "event": {
                    "type": "ObjectEvent",
                    "action": "OBSERVE",
                    "bizStep": "shipping",
                    "disposition": "in_transit",
                    "epcList": [code],
                    "eventTime": "2026-11-27T08:00:00.000Z",
                    "eventTimeZoneOffset": "+08:00",
                    "readPoint": {"id": "https://id.gs1.org/414/9506000134352/254/1"},
                },
                "capture": {"id": "c" * 64, "index": i % 100, "path": ["p" * 44]},
                "outcome": "accepted",
            },
        )
        out.append(
            PendingEntry(
                leaf=leaf,
                kind="event",
                event_id=event_id,
                codes=(code,) if index else (),
                items=(ItemUpdate(code=code, status="active", state_json='{"s":"active"}'),)
                if index
                else (),
            )
        )
    return out


@contextmanager
def fresh_sqlite() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def fresh_pg() -> Iterator[Engine]:
    schema = f"yima_bench_{secrets.token_hex(4)}"
    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_raw(engine: Engine, entries: list[PendingEntry]) -> None:
    for start in range(0, len(entries), BATCH):
        rows = [
            {
                "idx": start + i,
                "leaf": e.leaf,
                "leaf_hash": merkle.leaf_hash(e.leaf),
                "kind": e.kind,
                "event_id": e.event_id,
                "created": NOW,
            }
            for i, e in enumerate(entries[start : start + BATCH])
        ]
        with write_transaction(engine) as conn:
            conn.execute(insert(t.entries), rows)


def run_integrate(engine: Engine, entries: list[PendingEntry]) -> None:
    signer = Signer("bench.yima/log", PrivateKey.from_seed(b"\x05" * 32))
    sequencer = Sequencer(engine, origin="bench.yima/log", signer=signer, clock=lambda: NOW)
    for start in range(0, len(entries), BATCH):
        sequencer.integrate(entries[start : start + BATCH])


def median_rate(
    fresh: Callable[[], contextmanager[Engine]],  # type: ignore[type-arg]
    run: Callable[[Engine, list[PendingEntry]], None],
    entries: list[PendingEntry],
) -> float:
    times = []
    for _ in range(RUNS):
        with fresh() as engine:
            t0 = time.perf_counter()
            run(engine, entries)
            times.append(time.perf_counter() - t0)
    return len(entries) / statistics.median(times)


def pg_reachable() -> bool:
    try:
        probe = create_engine(normalize_url(PG_URL), connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
        return True
    except Exception:
        return False


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    bare = make_entries(n, index=False)
    indexed = make_entries(n, index=True)
    avg = sum(len(e.leaf) for e in bare) / n
    print(f"N={n} leaves (avg {avg:.0f} B), batch {BATCH}, median of {RUNS} runs")
    engines: list[tuple[str, Callable[..., contextmanager[Engine]]]] = [("sqlite", fresh_sqlite)]  # type: ignore[type-arg]
    if pg_reachable():
        engines.append(("postgres", fresh_pg))
    else:
        print(f"(PostgreSQL not reachable at {PG_URL}: skipped)")
    for name, fresh in engines:
        raw = median_rate(fresh, run_raw, bare)
        seq = median_rate(fresh, run_integrate, bare)
        idx = median_rate(fresh, run_integrate, indexed)
        print(
            f"{name:8s} raw insert {raw:9,.0f}/s | integrate {seq:9,.0f}/s ({seq / raw:.2f}x raw)"
            f" | integrate+index {idx:9,.0f}/s ({idx / raw:.2f}x raw)"
        )


if __name__ == "__main__":
    main()
