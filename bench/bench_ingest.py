"""Ingest benchmark: signed captures of 1,000 events through the service layer, rules on.

What is measured, per engine (SQLite WAL file in a temp dir; PostgreSQL in a private schema,
skipped when unreachable), on a fresh database each run, median of ``--runs``:

* ``raw``     SQLAlchemy Core ``executemany`` of the *same* ``entries`` rows (the exact leaf
  bytes the service wrote), one transaction per capture-sized batch: the floor.
* ``ingest``  :func:`api.services.ingest.ingest_capture` in-process (no HTTP): decode,
  signature, events root and every CBV 2.0 event ID re-verified, EPCIS validation,
  authorization, lifecycle rules with batched state loads, leaves, index rows, Merkle nodes and
  a signed checkpoint per capture.
* ``http``    (``--http``) the same captures POSTed to ``/v1/captures`` through TestClient.
* ``floor``   (``--floor``) every write ingest made (recorded in a first run: statements and
  parameters as sent to the driver, and the hot-table rows as handed to the bulk writer,
  executemany on SQLite, COPY on PostgreSQL) made again on a fresh database in the same
  transactions: the database work alone, with none of ingest's other Python — the floor under
  any faster implementation of the per-event path (docs/adr/0017).
* ``processes`` (``--processes N``, default 2) N independent flows (distinct devices and
  routes), ingested one after another in one process and then by one process each at once
  on the same database, as ``yima serve --workers N`` serves them (docs/adr/0016); then the
  same captures through N writers (containers) taking turns in this process, whose CPU time
  against one writer's is the cost of the writers alternating (their state caches are
  checked, not dropped, after another writer's appends: ADR 0014, amended).

The events are a valid factory → distributor → pharmacy flow of the demo world
(``fixtures/generate.py``), signed by each organisation's device before the clock starts (the
producer signs, not the service). Goals (docs/PERFORMANCE.md): ≥ 20,000 events/s on SQLite and
≥ 0.25 × raw; ≥ 10,000 events/s on PostgreSQL.

Besides events/s (wall clock) every line reports the CPU time of this process per 1,000 events
(``time.process_time``): on a shared machine it moves much less than wall time does, and the
database server's share of PostgreSQL's work is not in it.

Usage: ``python bench/bench_ingest.py [--events N] [--capture-size N] [--runs N] [--quick]
[--http] [--no-pg] [--no-state-cache] [--profile FILE] [--floor] [--processes N]``;
``YIMA_BENCH_PG_URL`` overrides the PostgreSQL URL. The garbage collector is tuned as
``yima serve`` tunes it (:func:`api.runtime.tune_gc`, docs/adr/0013); ``YIMA_GC_TUNING=0``
keeps CPython's defaults.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select, text

from api.auth import Caller
from api.container import Container
from api.runtime import tune_gc
from api.services.ingest import ingest_capture
from api.store import make_engine, upgrade
from api.store import tables as t
from api.store.db import normalize_url, write_transaction
from fixtures import demo, generate, world
from ledger import capture

PG_URL = os.environ.get("YIMA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Workload:
    """Pre-signed captures, in ingest order, with their wire forms."""

    events: int
    captures: list[tuple[world.Org, capture.SignedCapture, dict[str, Any]]]


def make_workload(events: int, capture_size: int, seed: int = 1) -> Workload:
    """Generate and sign ``events`` events as captures of at most ``capture_size`` events."""
    steps = generate.supply_chain(events=events, seed=seed, block_cases=max(1, capture_size // 3))
    signed = generate.captures(steps, size=capture_size)
    return Workload(events, [(o, s, capture.to_wire(s)) for o, s in signed])


# --------------------------------------------------------------------------- databases


def pg_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    try:
        probe = create_engine(normalize_url(url), connect_args={"connect_timeout": 3})
        try:
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            probe.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@contextmanager
def sqlite_url() -> Iterator[str]:
    """A database URL for a fresh SQLite file (WAL) in a temp dir, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="yima-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextmanager
def pg_url(base: str) -> Iterator[str]:
    """A URL whose connections use a fresh private schema, dropped afterwards."""
    schema = f"yima_bench_{secrets.token_hex(4)}"
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{normalize_url(base)}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def service(url: str, *, register: bool = True) -> Iterator[Container]:
    """A migrated container on ``url`` with the demo world registered (unless told not to)."""
    from api.app import build_container
    from api.settings import Settings
    from ledger.note import Signer

    settings = Settings(database_url=url, origin="bench.yima.example/log")
    signer = Signer(settings.origin, world.demo_key("bench/log"))
    c = build_container(settings, log_signer=signer)
    try:
        if register:
            demo.load_world(c)
        yield c
    finally:
        c.engine.dispose()


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds (this process) of one measured run."""

    wall: float
    cpu: float


def run_ingest(c: Container, work: Workload) -> Timing:
    """Ingest every capture in-process; checks every event was accepted."""
    callers = {o.id: Caller(o.id, o.role) for o in world.ORGS}
    t0, c0 = time.perf_counter(), time.process_time()
    receipts = [ingest_capture(c, callers[o.id], wire) for o, _s, wire in work.captures]
    timing = Timing(time.perf_counter() - t0, time.process_time() - c0)
    _check(r.status for rec in receipts for r in rec.results)
    return timing


def run_http(c: Container, work: Workload) -> float:
    """POST every capture to /v1/captures through TestClient; returns seconds."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(c.settings, container=c)) as client:
        t0 = time.perf_counter()
        statuses: list[str] = []
        for o, _s, wire in work.captures:
            resp = client.post(
                "/v1/captures", json=wire, headers={"Authorization": f"Bearer {o.token}"}
            )
            resp.raise_for_status()
            statuses.extend(r["status"] for r in resp.json()["results"])
        elapsed = time.perf_counter() - t0
    _check(statuses)
    return elapsed


def _check(statuses: Any) -> None:
    bad = [s for s in statuses if s != "accepted"]
    if bad:
        raise SystemExit(f"benchmark flow was not accepted by the rules: {len(bad)} events")


def entry_rows(c: Container, first: int) -> list[dict[str, Any]]:
    """The ``entries`` rows the service wrote from index ``first`` on (exact leaf bytes)."""
    e = t.entries.c
    cols = [e.idx, e.leaf, e.leaf_hash, e.kind, e.event_id, e.capture_id, e.producer, e.created]
    with c.engine.connect() as conn:
        rows = conn.execute(select(*cols).where(e.idx >= first).order_by(e.idx))
        return [dict(r._mapping) for r in rows]


def run_raw(url: str, rows: list[dict[str, Any]], batch: int) -> Timing:
    """Insert ``rows`` into ``entries`` of a fresh schema with Core executemany."""
    # The service's engine settings (background WAL checkpoints on SQLite, docs/adr/0015).
    engine = make_engine(url, background_checkpoints=True)
    try:
        upgrade(engine)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), batch):
            with write_transaction(engine) as conn:
                conn.execute(insert(t.entries), rows[i : i + batch])
        return Timing(time.perf_counter() - t0, time.process_time() - c0)
    finally:
        engine.dispose()


@dataclass
class Figures:
    """Medians of one engine: events/s, and CPU ms of this process per 1,000 events."""

    engine: str
    raw: float
    ingest: float
    http: float | None
    raw_cpu: float
    ingest_cpu: float

    def line(self) -> str:
        """One printable line."""
        out = (
            f"{self.engine:8s} raw insert {self.raw:10,.0f} ev/s | ingest {self.ingest:9,.0f} ev/s"
            f" ({self.ingest / self.raw:.3f} x raw)"
        )
        if self.http is not None:
            out += f" | http {self.http:9,.0f} ev/s ({self.http / self.raw:.3f} x raw)"
        out += f" | CPU ms/1000 ev: raw {self.raw_cpu:.1f}, ingest {self.ingest_cpu:.1f}"
        return out


def bench_engine(
    name: str,
    fresh: Callable[[], Any],
    work: Workload,
    *,
    runs: int,
    batch: int,
    http: bool,
    profile: str | None,
    state_cache: bool = True,
) -> Figures:
    """Median events/s of raw insert, in-process ingest (and HTTP) on one engine."""
    raw_t: list[Timing] = []
    ing_t: list[Timing] = []
    http_t: list[float] = []
    for run in range(runs):
        with fresh() as url, service(url) as c:
            if not state_cache:
                c.sequencer.state_cache.resize(0)
            first = c.store.size()
            if profile and run == 0:
                prof = cProfile.Profile()
                prof.enable()
                ing_t.append(run_ingest(c, work))
                prof.disable()
                prof.dump_stats(f"{profile}.{name}")
                stats = pstats.Stats(prof).sort_stats("cumulative")
                print(f"-- profile of the first {name} ingest run (cumulative, top 25):")
                stats.print_stats(25)
            else:
                ing_t.append(run_ingest(c, work))
            rows = entry_rows(c, first)
        with fresh() as url:
            raw_t.append(run_raw(url, rows, batch))
        if http:
            with fresh() as url, service(url) as c:
                http_t.append(run_http(c, work))
        print(
            f"  {name} run {run + 1}/{runs}: raw {work.events / raw_t[-1].wall:,.0f} ev/s, "
            f"ingest {work.events / ing_t[-1].wall:,.0f} ev/s"
            + (f", http {work.events / http_t[-1]:,.0f} ev/s" if http else "")
            + f" (CPU ms/1000 ev: raw {_per_k(raw_t[-1].cpu, work)}, "
            f"ingest {_per_k(ing_t[-1].cpu, work)}; load {loadavg()})",
            flush=True,
        )
    return Figures(
        name,
        work.events / statistics.median(x.wall for x in raw_t),
        work.events / statistics.median(x.wall for x in ing_t),
        work.events / statistics.median(http_t) if http_t else None,
        statistics.median(x.cpu for x in raw_t) * 1000 * 1000 / work.events,
        statistics.median(x.cpu for x in ing_t) * 1000 * 1000 / work.events,
    )


# --------------------------------------------------------------------------- the write floor

#: What the floor replays: the statements that change the database (not SELECTs, not BEGIN).
_WRITES = ("INSERT", "UPDATE", "DELETE", "PRAGMA", "CREATE")

#: One recorded write: ("sql", statement, parameters) as sent to the driver, or ("bulk",
#: table spec, rows, keyword arguments) for a hot-table write (``_bulk_write``: executemany on
#: SQLite, COPY on PostgreSQL, which the engine's cursor events do not see).
_Write = tuple[Any, ...]


def record_writes(c: Container, work: Workload) -> list[list[_Write]]:
    """Ingest ``work`` and return, per committed transaction, every write it made, in order."""
    from api.store import sequencer

    groups: list[list[_Write]] = [[]]
    in_bulk = [False]
    bulk_write = sequencer._bulk_write

    def recording_bulk(conn: Any, spec: Any, rows: Any, **kw: Any) -> None:
        groups[-1].append(("bulk", spec, list(rows), kw))
        in_bulk[0] = True
        try:
            bulk_write(conn, spec, rows, **kw)
        finally:
            in_bulk[0] = False

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if not in_bulk[0] and statement.lstrip()[:6].upper().startswith(_WRITES):
            groups[-1].append(("sql", statement, parameters))

    def committed(_conn: Any) -> None:
        if groups[-1]:
            groups.append([])

    event.listen(c.engine, "before_cursor_execute", seen)
    event.listen(c.engine, "commit", committed)
    sequencer._bulk_write = recording_bulk  # type: ignore[assignment]
    try:
        run_ingest(c, work)
    finally:
        sequencer._bulk_write = bulk_write
        event.remove(c.engine, "before_cursor_execute", seen)
        event.remove(c.engine, "commit", committed)
    return [g for g in groups if g]


def run_floor(c: Container, groups: list[list[_Write]]) -> Timing:
    """Make the recorded writes again, one transaction per recorded one, on a fresh database
    with the same world registered: ingest's database work (as the service does it, hot tables
    included) with none of its other Python (decoding, verification, rules, leaves, states)."""
    from api.store.sequencer import _bulk_write

    t0, c0 = time.perf_counter(), time.process_time()
    for group in groups:
        with write_transaction(c.engine) as conn:
            for w in group:
                if w[0] == "bulk":
                    _bulk_write(conn, w[1], w[2], **w[3])
                else:
                    conn.exec_driver_sql(w[1], w[2])
    return Timing(time.perf_counter() - t0, time.process_time() - c0)


def bench_floor(name: str, fresh: Callable[[], Any], work: Workload, *, runs: int) -> None:
    """Print ingest against the replay of its own writes (medians)."""
    ingest: list[Timing] = []
    floor: list[Timing] = []
    for run in range(runs):
        with fresh() as url, service(url) as c:
            groups = record_writes(c, work)
        with fresh() as url, service(url) as c:
            ingest.append(run_ingest(c, work))
        with fresh() as url, service(url) as c:
            floor.append(run_floor(c, groups))
        n = sum(len(g) for g in groups)
        print(
            f"  {name} run {run + 1}/{runs}: ingest {work.events / ingest[-1].wall:,.0f} ev/s, "
            f"its {n:,} write statements in {len(groups)} transactions replayed "
            f"{work.events / floor[-1].wall:,.0f} ev/s (CPU ms/1000 ev: ingest "
            f"{_per_k(ingest[-1].cpu, work)}, floor {_per_k(floor[-1].cpu, work)}; "
            f"load {loadavg()})",
            flush=True,
        )
    i = work.events / statistics.median(x.wall for x in ingest)
    f = work.events / statistics.median(x.wall for x in floor)
    i_cpu = statistics.median(x.cpu for x in ingest)
    f_cpu = statistics.median(x.cpu for x in floor)
    print(
        f"{name:8s} write floor: {f:,.0f} ev/s vs ingest {i:,.0f} ev/s ({i / f:.3f} x floor); "
        f"CPU ms/1000 ev: floor {_per_k(f_cpu, work)}, ingest {_per_k(i_cpu, work)} "
        f"(the Python above the floor: {_per_k(i_cpu - f_cpu, work)})"
    )


# --------------------------------------------------------------------------- several processes

#: Independent flows of the demo world: (manufacturer device, distributor, pharmacy, product).
#: Their producers differ, so their captures may be ingested concurrently in any interleaving.
_ROUTES = (
    (None, world.ZHONGJIAN, world.BAIXINGKANG, world.AMOXICILLIN),
    ("qa", world.NANYUE, world.YIMIN, world.IBUPROFEN),
)


def make_streams(events: int, capture_size: int, n: int) -> list[Workload]:
    """``n`` independent signed flows of ``events // n`` events each (one per process)."""
    if not 1 <= n <= len(_ROUTES):
        raise SystemExit(f"--processes: 1 to {len(_ROUTES)} (independent routes of the demo world)")
    out = []
    for i in range(n):
        device, dc, pharmacy, product = _ROUTES[i]
        steps = generate.supply_chain(
            events=events // n,
            seed=100 + i,
            block_cases=max(1, capture_size // 3),
            route=(world.HUAXIN, dc, pharmacy),
            product=product,
            mfr_device=device,
        )
        signed = generate.captures(steps, size=capture_size)
        out.append(Workload(len(steps), [(o, s, capture.to_wire(s)) for o, s in signed]))
    return out


def _stream_process(url: str, work: Workload, barrier: Any, results: Any) -> None:
    # A process of its own, as one `yima serve --workers N` worker: its own engine, sequencer
    # and state cache on the shared database.
    tune_gc()
    with service(url, register=False) as c:
        barrier.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        timing = run_ingest(c, work)
        results.put((t0, t0 + timing.wall, time.process_time() - c0))


def run_processes(url: str, streams: list[Workload]) -> Timing:
    """Ingest each stream in a process of its own, all at once; wall from the common start to
    the last finish, CPU summed over the processes."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(len(streams)), ctx.Queue()
    procs = [ctx.Process(target=_stream_process, args=(url, w, barrier, results)) for w in streams]
    for p in procs:
        p.start()
    out = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"an ingest process failed (exit {p.exitcode})")
    return Timing(max(e for _, e, _ in out) - min(s for s, _, _ in out), sum(c for *_, c in out))


def run_alternating(url: str, streams: list[Workload]) -> tuple[Timing, list[Any]]:
    """Ingest the streams' captures in turn (A1, B1, A2, B2, ...) through one container per
    stream in this process: the writers alternate as the processes of ``yima serve --workers
    N`` do, without the scheduling noise. Returns the timing and each writer's state cache."""
    callers = {o.id: Caller(o.id, o.role) for o in world.ORGS}
    with ExitStack() as stack:
        cs = [stack.enter_context(service(url, register=i == 0)) for i in range(len(streams))]
        turns = [
            (c, w.captures[k])
            for k in range(max(len(w.captures) for w in streams))
            for c, w in zip(cs, streams, strict=True)
            if k < len(w.captures)
        ]
        statuses: list[str] = []
        t0, c0 = time.perf_counter(), time.process_time()
        for c, (o, _s, wire) in turns:
            statuses.extend(r.status for r in ingest_capture(c, callers[o.id], wire).results)
        timing = Timing(time.perf_counter() - t0, time.process_time() - c0)
        _check(statuses)
        return timing, [c.sequencer.state_cache for c in cs]


def bench_processes(
    name: str, fresh: Callable[[], Any], streams: list[Workload], *, runs: int, batch: int
) -> None:
    """Print events/s of the streams ingested one after another in one process, then by one
    process each at once, and raw insert of the same rows (medians)."""
    events = sum(w.events for w in streams)
    serial: list[Timing] = []
    parallel: list[Timing] = []
    alternating: list[Timing] = []
    raw: list[Timing] = []
    for run in range(runs):
        with fresh() as url, service(url) as c:
            first = c.store.size()
            t0, c0 = time.perf_counter(), time.process_time()
            for w in streams:
                run_ingest(c, w)
            serial.append(Timing(time.perf_counter() - t0, time.process_time() - c0))
            rows = entry_rows(c, first)
        with fresh() as url:
            with service(url) as c:
                c.engine.dispose()  # registered; the processes open their own engines
            parallel.append(run_processes(url, streams))
        with fresh() as url:
            timing, caches = run_alternating(url, streams)
            alternating.append(timing)
        with fresh() as url:
            raw.append(run_raw(url, rows, batch))
        print(
            f"  {name} run {run + 1}/{runs}: {len(streams)} streams one after another "
            f"{events / serial[-1].wall:,.0f} ev/s, one process each "
            f"{events / parallel[-1].wall:,.0f} ev/s, raw {events / raw[-1].wall:,.0f} ev/s "
            f"(CPU ms/1000 ev, all processes: {serial[-1].cpu * 1e6 / events:.1f} vs "
            f"{parallel[-1].cpu * 1e6 / events:.1f}; load {loadavg()})",
            flush=True,
        )
        print(
            f"  {name} run {run + 1}/{runs}: {len(streams)} writers taking turns in one "
            f"process: CPU ms/1000 ev {alternating[-1].cpu * 1e6 / events:.1f} (one writer: "
            f"{serial[-1].cpu * 1e6 / events:.1f}); state caches hits/misses/rechecked/stale "
            + ", ".join(f"{x.hits}/{x.misses}/{x.rechecked}/{x.stale}" for x in caches),
            flush=True,
        )
    s = events / statistics.median(x.wall for x in serial)
    p = events / statistics.median(x.wall for x in parallel)
    r = events / statistics.median(x.wall for x in raw)
    print(
        f"{name:8s} {len(streams)} processes: {p:,.0f} ev/s vs {s:,.0f} in one process "
        f"({p / s:.2f}x); raw insert {r:,.0f} ev/s -> {p / r:.3f} x raw"
    )
    a_cpu = statistics.median(x.cpu for x in alternating) * 1e6 / events
    s_cpu = statistics.median(x.cpu for x in serial) * 1e6 / events
    print(
        f"{name:8s} {len(streams)} writers taking turns, one process: CPU {a_cpu:.1f} ms/1000 ev "
        f"vs {s_cpu:.1f} with one writer ({a_cpu / s_cpu:.2f}x)"
    )


def _per_k(seconds: float, work: Workload) -> str:
    return f"{seconds * 1000 * 1000 / work.events:.1f}"


def loadavg() -> str:
    """The 1/5/15-minute load averages, to judge how quiet the machine was."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000, help="events per run (default 10000)")
    ap.add_argument("--capture-size", type=int, default=1000, help="events per capture")
    ap.add_argument("--runs", type=int, default=5, help="runs per engine; medians reported")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 events, 1 run")
    ap.add_argument("--http", action="store_true", help="also POST through TestClient")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (a schema is created)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the first ingest run")
    ap.add_argument(
        "--no-state-cache",
        action="store_true",
        help="disable the writer's item-state cache (docs/adr/0014)",
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also replay the exact writes ingest made (both engines): the database "
        "work alone, the floor of any faster implementation of the per-event path",
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also ingest independent flows in this many processes at once, as "
        "`yima serve --workers N` does (1-2; 0 skips the tier)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.events, args.capture_size, args.runs = 200, 100, 1

    t0 = time.perf_counter()
    work = make_workload(args.events, args.capture_size)
    # As `yima serve` does after start-up (the signed workload is then long-lived, as the
    # service's start-up objects are).
    tune_gc()
    print(
        f"workload: {work.events} events in {len(work.captures)} signed captures of <= "
        f"{args.capture_size} (generated and signed in {time.perf_counter() - t0:.1f}s); "
        f"median of {args.runs} run(s); {datetime.now(UTC):%Y-%m-%d}; load average {loadavg()}; "
        f"gc thresholds {gc.get_threshold()}"
        + ("; state cache off" if args.no_state_cache else ""),
        flush=True,
    )
    engines: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_url)]
    if not args.no_pg:
        why = pg_reachable(args.pg_url)
        if why is None:
            engines.append(("postgres", lambda: pg_url(args.pg_url)))
        else:
            print(f"(PostgreSQL skipped: {why})")
    results = [
        bench_engine(
            name,
            fresh,
            work,
            runs=args.runs,
            batch=args.capture_size,
            http=args.http,
            profile=args.profile,
            state_cache=not args.no_state_cache,
        )
        for name, fresh in engines
    ]
    print("== ingest of signed captures, rules on (medians)")
    print(f"(load average now {loadavg()}; other processes on the machine skew the figures)")
    for fig in results:
        print(fig.line())
    if args.floor:
        print("== ingest against its own write statements replayed (medians)", flush=True)
        for name, fresh in engines:
            bench_floor(name, fresh, work, runs=args.runs)
    if args.processes:
        streams = make_streams(args.events, args.capture_size, args.processes)
        print(f"== {args.processes} independent flows, one process each (medians)", flush=True)
        for name, fresh in engines:
            bench_processes(name, fresh, streams, runs=args.runs, batch=args.capture_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
