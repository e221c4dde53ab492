"""Provenance benchmark: p50/p99 of an item's history with >= 1M items and >= 5M events.

The database is filled FAST with SYNTHETIC rows (``fixtures/generate.provenance_rows``) written
straight into the store's tables — ``entries``, ``item_events``, ``items`` — with SQLAlchemy
Core ``executemany`` on SQLite and ``COPY`` on PostgreSQL. This bypasses ingest on purpose:
the leaves have the real envelope shape but placeholder signatures and no Merkle nodes, so
the data measures the *query path* only (the goal: p99 <= 10 ms), not verification.

The demo world is registered first (so an HTTP run has orgs and tokens); then, for
``--queries`` pack codes drawn at random (fixed seed), the wall time and the CPU time of the
querying thread of :func:`api.services.items.get_history` (one statement for the item, its
product, own and lot entries; one more for the case's entries, cut by the packing window) are
recorded; ``--http`` also times ``GET /v1/items/{code}/history`` through TestClient (CPU time
of the whole process there). A warm-up of 100 other codes runs first. ``--rounds N`` repeats
the timed queries and reports the median p50/p99 of the rounds (the machine may be shared: CPU
time is the steadier figure; on SQLite it includes the database engine's work, on PostgreSQL
only the client's).

Usage: ``python bench/bench_provenance.py [--items N] [--events N] [--queries N] [--rounds N]
[--quick] [--http] [--no-pg] [--no-sqlite] [--keep DIR] [--pg-schema NAME] [--reuse]``;
``YIMA_BENCH_PG_URL`` overrides PostgreSQL. ``--keep`` (SQLite) and ``--pg-schema``
(PostgreSQL) keep the filled database; with ``--reuse`` a kept one is queried, not reloaded.
"""

from __future__ import annotations

import argparse
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from api.auth import Caller
from api.container import Container
from api.services.items import get_history
from api.store.db import normalize_url
from fixtures import generate, world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import PG_URL, loadavg, pg_reachable, pg_url, service

_ENTRY_COLS = ("idx", "leaf", "leaf_hash", "kind", "event_id", "capture_id", "producer", "created")
_IE_COLS = ("code", "log_index")
_ITEM_COLS = (
    "code", "product_gtin", "lot", "expiry", "status", "custodian", "location", "parent",
    "in_transit_to", "recalled", "quarantined", "dispense_count", "state_json", "updated_index",
)  # fmt: skip


def _progress(done: int, total: int, t0: float, what: str) -> None:
    rate = done / max(1e-9, time.perf_counter() - t0)
    print(f"\r  loaded {done:,}/{total:,} {what} ({rate:,.0f}/s)", end="", flush=True)


def load_sqlite(c: Container, chunks: Iterator[generate.ProvenanceRows], items: int) -> list[str]:
    """Executemany every chunk in its own transaction; returns the pack codes.

    Straight through the sqlite3 driver: SQLAlchemy's per-row parameter processing cost more
    than the inserts themselves at this volume. Values are stored in the forms SQLAlchemy
    writes (DATETIME as ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as 0/1).
    """
    codes: list[str] = []
    t0 = time.perf_counter()
    raw = c.engine.raw_connection()
    try:
        db: Any = raw.driver_connection
        # Random keys (leaf hashes, event ids, serials) land all over the indexes: a large page
        # cache for this one loading connection keeps those B-trees in memory.
        db.execute("PRAGMA cache_size = -2000000")
        statements = [
            (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", cols)
            for table, cols in (
                ("entries", _ENTRY_COLS),
                ("item_events", _IE_COLS),
                ("items", _ITEM_COLS),
            )
        ]
        for chunk in chunks:
            db.execute("BEGIN")
            for (sql, cols), rows in zip(
                statements, (chunk.entries, chunk.item_events, chunk.items), strict=True
            ):
                db.executemany(sql, [tuple(_sqlite_value(r[k]) for k in cols) for r in rows])
            db.execute("COMMIT")
            codes.extend(chunk.codes)
            _progress(len(codes), items, t0, "items")
    finally:
        raw.close()
    print()
    return codes


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def load_pg(c: Container, chunks: Iterator[generate.ProvenanceRows], items: int) -> list[str]:
    """COPY every chunk (psycopg 3) in its own transaction; returns the pack codes."""
    codes: list[str] = []
    t0 = time.perf_counter()
    raw = c.engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        for chunk in chunks:
            with dbapi.transaction(), dbapi.cursor() as cur:
                for table, cols, rows in (
                    ("entries", _ENTRY_COLS, chunk.entries),
                    ("item_events", _IE_COLS, chunk.item_events),
                    ("items", _ITEM_COLS, chunk.items),
                ):
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                        for row in rows:
                            cp.write_row([row[k] for k in cols])
            codes.extend(chunk.codes)
            _progress(len(codes), items, t0, "items")
        with dbapi.cursor() as cur:
            cur.execute("ANALYZE entries; ANALYZE item_events; ANALYZE items")
        dbapi.commit()
    finally:
        raw.close()
    print()
    return codes


def prefetch(chunks: Iterator[generate.ProvenanceRows]) -> Iterator[generate.ProvenanceRows]:
    """Generate the next chunk in a thread while the current one is written.

    The drivers release the GIL while the database works, so generation (pure Python) and
    insertion overlap on the two cores.
    """
    q: queue.Queue[generate.ProvenanceRows | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        for chunk in chunks:
            q.put(chunk)
        q.put(None)

    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not None:
        yield item


def _pct(sorted_ms: list[float], q: float) -> float:
    k = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[k]


@dataclass(frozen=True)
class Timing:
    """Percentiles in milliseconds of one round: wall clock and CPU time of this thread."""

    p50: float
    p99: float
    mean: float
    cpu_p50: float
    cpu_p99: float


def time_queries(
    fn: Callable[[str], Any], codes: list[str], cpu_clock: Callable[[], float] = time.thread_time
) -> Timing:
    """Wall and CPU p50/p99/mean in milliseconds of ``fn(code)`` over ``codes``.

    ``cpu_clock`` is this thread's CPU time by default; the HTTP runs pass the process's
    (TestClient serves the request on another thread).
    """
    ms: list[float] = []
    cpu: list[float] = []
    for code in codes:
        c0 = cpu_clock()
        t0 = time.perf_counter()
        fn(code)
        ms.append((time.perf_counter() - t0) * 1000)
        cpu.append((cpu_clock() - c0) * 1000)
    mean = statistics.fmean(ms)
    ms.sort()
    cpu.sort()
    return Timing(_pct(ms, 0.50), _pct(ms, 0.99), mean, _pct(cpu, 0.50), _pct(cpu, 0.99))


def median_timing(rounds: list[Timing]) -> Timing:
    """Field-wise median of several rounds (robust against a burst of load in one round)."""
    return Timing(
        *(
            statistics.median(getattr(r, f) for r in rounds)
            for f in ("p50", "p99", "mean", "cpu_p50", "cpu_p99")
        )
    )


def _report(label: str, rounds: list[Timing]) -> str:
    m = median_timing(rounds)
    spread = ""
    if len(rounds) > 1:
        spread = f" (rounds p99 {min(r.p99 for r in rounds):.2f}–{max(r.p99 for r in rounds):.2f})"
    return (
        f"{label}: p50 {m.p50:.2f} ms | p99 {m.p99:.2f} ms | mean {m.mean:.2f} ms | "
        f"CPU p50 {m.cpu_p50:.2f} ms | CPU p99 {m.cpu_p99:.2f} ms{spread}"
    )


def bench(name: str, url: str, args: argparse.Namespace, *, reuse: bool = False) -> None:
    """Fill one database (unless ``reuse``: it is already filled) and time history queries."""
    with service(url, register=not reuse) as c:
        t0 = time.perf_counter()
        if reuse:
            with c.engine.connect() as conn:
                codes = [
                    r[0]
                    for r in conn.execute(
                        text("SELECT code FROM items WHERE product_gtin IS NOT NULL")
                    )
                ]
        else:
            chunks = generate.provenance_rows(
                items=args.items, events=args.events, seed=args.seed, first_index=c.store.size()
            )
            loader = load_pg if name == "postgres" else load_sqlite
            codes = loader(c, prefetch(chunks), args.items)
        load_s = time.perf_counter() - t0
        with c.engine.connect() as conn:
            n_entries = conn.execute(text("SELECT count(*) FROM entries")).scalar_one()
            n_ie = conn.execute(text("SELECT count(*) FROM item_events")).scalar_one()
            n_items = conn.execute(text("SELECT count(*) FROM items")).scalar_one()
        print(
            f"{name}: {n_items:,} items, {n_entries:,} entries (events), {n_ie:,} item_events rows"
            + ("" if reuse else f" loaded in {load_s:,.0f}s")
        )
        rng = random.Random(args.seed + 1)
        sample = rng.sample(codes, min(len(codes), args.queries + 100))
        warm, measured = sample[:100], sample[100:]
        regulator = Caller(world.JS_MPA.id, "regulator")
        lengths: list[int] = []

        def history(code: str) -> None:
            _view, entries = get_history(c, regulator, code)
            lengths.append(len(entries))

        time_queries(history, warm)
        lengths.clear()
        rounds = [time_queries(history, measured) for _ in range(args.rounds)]
        print(f"  (load average {loadavg()})")
        print(
            _report(f"{name:8s} history (service)", rounds)
            + f" | {len(measured)} queries x {args.rounds} | "
            f"{statistics.fmean(lengths):.1f} entries/history"
        )
        if args.http:
            from fastapi.testclient import TestClient

            from api.app import create_app
            from fixtures.journey import item_path

            headers = {"Authorization": f"Bearer {world.JS_MPA.token}"}
            with TestClient(create_app(c.settings, container=c)) as client:

                def over_http(code: str) -> None:
                    client.get(f"/v1/items/{item_path(code)}/history", headers=headers)

                time_queries(over_http, warm)
                rounds = [
                    time_queries(over_http, measured, time.process_time) for _ in range(args.rounds)
                ]
            print(_report(f"{name:8s} history (HTTP)   ", rounds))


@contextmanager
def sqlite_file(keep: str | None, *, reuse: bool = False) -> Iterator[str]:
    """A SQLite URL in a temp dir (or in ``keep``, left in place; kept as is with ``reuse``)."""
    if keep:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        db = path / "provenance.db"
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        yield f"sqlite:///{db}"
        return
    with tempfile.TemporaryDirectory(prefix="yima-prov-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'provenance.db'}"


def kept_pg_schema(base: str, schema: str, *, reuse: bool) -> tuple[str, bool]:
    """(URL, already filled) of a named schema that outlives the run.

    With ``reuse`` and a schema that already holds items, it is queried as it is; otherwise it
    is dropped and created afresh.
    """
    if not schema.isidentifier():
        raise SystemExit(f"--pg-schema {schema!r}: use letters, digits and underscores")
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            filled = False
            if reuse:
                found = conn.execute(
                    text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{schema}.items"}
                ).scalar_one()
                filled = bool(found) and bool(
                    conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{schema}".items)')).scalar()
                )
            if not filled:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    sep = "&" if "?" in base else "?"
    return f"{normalize_url(base)}{sep}options=-csearch_path%3D{schema}", filled


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000, help="packs (default 1,000,000)")
    ap.add_argument("--events", type=int, default=5_000_000, help="events (default 5,000,000)")
    ap.add_argument("--queries", type=int, default=1000, help="timed history queries")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the timed queries N times")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 items, 10,000 events")
    ap.add_argument("--http", action="store_true", help="also time the HTTP endpoint")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (a schema is created)")
    ap.add_argument("--keep", metavar="DIR", help="keep the SQLite file in DIR")
    ap.add_argument("--pg-schema", metavar="NAME", help="fill (and keep) this PostgreSQL schema")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep / --pg-schema: query the kept database, do not reload",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.items, args.events, args.queries = 2_000, 10_000, min(args.queries, 100)
    if args.reuse:
        print(f"provenance: reusing kept databases where present, {args.queries} queries")
    else:
        print(
            f"provenance: {args.items:,} items, ~{args.events:,} events (SYNTHETIC rows, "
            f"bulk-loaded, bypassing ingest), {args.queries} random history queries"
        )
    if not args.no_sqlite:
        reuse = bool(args.reuse and args.keep and (Path(args.keep) / "provenance.db").exists())
        with sqlite_file(args.keep, reuse=reuse) as url:
            bench("sqlite", url, args, reuse=reuse)
    if not args.no_pg:
        why = pg_reachable(args.pg_url)
        if why is None and args.pg_schema:
            url, filled = kept_pg_schema(args.pg_url, args.pg_schema, reuse=args.reuse)
            bench("postgres", url, args, reuse=filled)
        elif why is None:
            with pg_url(args.pg_url) as url:
                bench("postgres", url, args)
        else:
            print(f"(PostgreSQL skipped: {why})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
