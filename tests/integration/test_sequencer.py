"""The single writer: atomic batches, the checkpoint compare-and-swap, crash safety, and two
processes writing one log (SQLite file and PostgreSQL schema)."""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from api.store import LogStore, PendingEntry, Sequencer, SequencerLock, make_engine, make_leaf
from api.store import tables as t
from api.store.sequencer import AlertRecord, CaptureRecord, ItemUpdate
from ledger import merkle
from ledger.errors import ConflictError
from ledger.note import Signer, Verifier, verify_checkpoint
from ledger.signing import PrivateKey

ORIGIN = "yima.test/log/sequencer"
SEED = bytes(range(32, 64))  # demo-only key: fixed so runs are reproducible


def make_signer() -> Signer:
    return Signer(ORIGIN, PrivateKey.from_seed(SEED))


def entry(tag: str, n: int) -> PendingEntry:
    """An event entry with every kind of index row, so rollbacks are checked on all tables."""
    event_id = f"ni:///sha-256;{tag}-{n}?ver=CBV2.0"
    code = f"https://id.gs1.org/01/09506000134352/21/{tag}{n}"
    cid = hashlib.sha256(f"{tag}-{n}".encode()).hexdigest()
    return PendingEntry(
        leaf=make_leaf("event", {"event_id": event_id, "pad": "p" * 500}),
        kind="event",
        event_id=event_id,
        producer=tag,
        capture_id=cid,
        capture=CaptureRecord(cid, tag, n, b"payload", b"sig", 1),
        codes=(code,),
        items=(ItemUpdate(code=code, status="active", state_json="{}"),),
        alerts=(AlertRecord(kind="k", rule="R0", message="m", codes=(code,)),),
    )


def row_counts(engine: Engine) -> dict[str, int]:
    tables = (
        t.entries,
        t.merkle_nodes,
        t.checkpoints,
        t.item_events,
        t.items,
        t.alerts,
        t.captures,
        t.producer_heads,
    )
    with engine.connect() as conn:
        return {
            tb.name: conn.execute(select(func.count()).select_from(tb)).scalar_one()
            for tb in tables
        }


@pytest.fixture
def sequencer(engine: Engine) -> Sequencer:
    return Sequencer(engine, origin=ORIGIN, signer=make_signer())


@pytest.fixture
def store(engine: Engine, sequencer: Sequencer) -> LogStore:
    return LogStore(engine, sequencer=sequencer)


def assert_linear_log(store: LogStore, verifier: Verifier) -> int:
    """Indices contiguous, every checkpoint signed, all consistent, roots match the leaves."""
    latest = store.latest_checkpoint()
    assert latest is not None
    entries = store.get_entries(0, latest.size + 10)
    assert [i for i, _ in entries] == list(range(latest.size))
    leaf_hashes = [merkle.leaf_hash(leaf) for _, leaf in entries]
    checkpoints = store.checkpoints(limit=100_000)
    for prev, cur in itertools.pairwise(checkpoints):
        merkle.verify_consistency(
            prev.size, cur.size, prev.root, cur.root, store.consistency_proof(prev.size, cur.size)
        )
    for cp in checkpoints:
        assert verify_checkpoint(cp.note, [verifier]).root_hash == cp.root
        assert cp.root == merkle.root_of(leaf_hashes[: cp.size])
    return latest.size


# -- atomic batches ----------------------------------------------------------------------------


def test_exception_mid_batch_rolls_everything_back(
    store: LogStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append([entry("a", i) for i in range(5)])
    before = row_counts(engine)
    latest = store.latest_checkpoint()

    # Fail after entries, index rows and Merkle nodes are written, just before the checkpoint.
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("signer unavailable")

    monkeypatch.setattr("api.store.sequencer.sign_note", boom)
    with pytest.raises(RuntimeError, match="signer unavailable"):
        store.append([entry("b", i) for i in range(7)])
    monkeypatch.undo()

    assert row_counts(engine) == before
    assert store.latest_checkpoint() == latest
    # The log carries on exactly where it was.
    result = store.append([entry("b", i) for i in range(7)])
    assert (result.first_index, result.size) == (5, 12)
    assert_linear_log(store, Verifier.parse_vkey(make_signer().vkey()))


def test_constraint_failure_mid_batch_writes_nothing(store: LogStore, engine: Engine) -> None:
    store.append([entry("a", 0)])
    before = row_counts(engine)
    with pytest.raises(ConflictError):
        # The third entry replays event a-0: refused by the event_id unique index.
        store.append([entry("c", 0), entry("c", 1), entry("a", 0)])
    assert row_counts(engine) == before


# -- checkpoint compare-and-swap ---------------------------------------------------------------


def _tamper_then_expect_conflict(
    store: LogStore, engine: Engine, tamper: Callable[[Any], Any]
) -> None:
    store.append([entry("a", i) for i in range(6)])  # border at 6: (1, 2) and (2, 0)
    with engine.begin() as conn:
        tamper(conn)
    before = row_counts(engine)
    with pytest.raises(ConflictError):
        store.append([entry("b", 0)])
    assert row_counts(engine) == before


def test_tampered_border_hash_refuses_to_sign(store: LogStore, engine: Engine) -> None:
    n = t.merkle_nodes.c
    _tamper_then_expect_conflict(
        store,
        engine,
        lambda conn: conn.execute(
            update(t.merkle_nodes).where(n.level == 1, n.idx == 2).values(hash=b"\x00" * 32)
        ),
    )


def test_missing_border_hash_refuses_to_sign(store: LogStore, engine: Engine) -> None:
    n = t.merkle_nodes.c
    _tamper_then_expect_conflict(
        store,
        engine,
        lambda conn: conn.execute(t.merkle_nodes.delete().where(n.level == 2, n.idx == 0)),
    )


def test_tampered_leaf_hash_on_the_border_refuses_to_sign(store: LogStore, engine: Engine) -> None:
    store.append([entry("a", i) for i in range(5)])  # border at 5: (2, 0) and leaf 4
    with engine.begin() as conn:
        conn.execute(update(t.entries).where(t.entries.c.idx == 4).values(leaf_hash=b"\x03" * 32))
    before = row_counts(engine)
    with pytest.raises(ConflictError):
        store.append([entry("b", 0)])
    assert row_counts(engine) == before


def test_tampered_checkpoint_root_refuses_to_sign(store: LogStore, engine: Engine) -> None:
    c = t.checkpoints.c
    _tamper_then_expect_conflict(
        store,
        engine,
        lambda conn: conn.execute(
            update(t.checkpoints).where(c.size == 6).values(root=b"\x01" * 32)
        ),
    )


def test_checkpoint_ahead_of_the_tree_refuses_to_sign(store: LogStore, engine: Engine) -> None:
    # A head someone else signed at a size this store does not have: never sign below it.
    _tamper_then_expect_conflict(
        store,
        engine,
        lambda conn: conn.execute(
            t.checkpoints.insert().values(
                size=9, root=b"\x02" * 32, note="x", created=store.checkpoints()[0].created
            )
        ),
    )


def test_entries_without_checkpoint_refuse_to_sign(store: LogStore, engine: Engine) -> None:
    _tamper_then_expect_conflict(store, engine, lambda conn: conn.execute(t.checkpoints.delete()))


# -- crash (kill -9) in the middle of a batch --------------------------------------------------


def _crash_worker(url: str, connect_args: dict[str, Any], flag: str) -> None:
    import api.store.sequencer as seq_mod

    def hang(*args: Any, **kwargs: Any) -> Any:
        # Entries and nodes are written, the transaction is open: now get killed.
        Path(flag).write_text("in transaction")
        time.sleep(120)
        raise AssertionError("not killed")

    seq_mod.sign_note = hang  # type: ignore[assignment]
    engine = make_engine(url, connect_args=connect_args)
    Sequencer(engine, origin=ORIGIN, signer=make_signer()).integrate(
        [entry("dead", i) for i in range(50)]
    )


def _engine_target(engine: Engine, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """URL and connect_args another process needs to open the same database (and schema)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        return url, request.getfixturevalue("pg_schema").connect_args
    return url, {}


@pytest.mark.slow
def test_killed_writer_leaves_the_last_checkpoint_intact(
    store: LogStore, engine: Engine, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store.append([entry("a", i) for i in range(3)])
    before = row_counts(engine)
    url, connect_args = _engine_target(engine, request)
    flag = tmp_path / "flag"
    proc = mp.get_context("spawn").Process(
        target=_crash_worker, args=(url, connect_args, str(flag))
    )
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.is_alive() and time.monotonic() < deadline, "worker never reached the batch"
            time.sleep(0.05)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL

    # Reopen: the half-written batch is gone (WAL recovery / server-side rollback), the lock is
    # free, and the log extends the last checkpoint.
    engine.dispose()
    assert row_counts(engine) == before
    result = store.append([entry("b", i) for i in range(4)])
    assert (result.first_index, result.size) == (3, 7)
    assert_linear_log(store, Verifier.parse_vkey(make_signer().vkey()))


# -- two processes, one log --------------------------------------------------------------------


def _append_worker(
    url: str,
    connect_args: dict[str, Any],
    tag: str,
    batches: int,
    per_batch: int,
    start: Any,
    out: Any,
) -> None:
    engine = make_engine(url, connect_args=connect_args)
    sequencer = Sequencer(engine, origin=ORIGIN, signer=make_signer())
    start.wait(60)
    results = []
    for b in range(batches):
        res = sequencer.integrate([entry(tag, b * per_batch + i) for i in range(per_batch)])
        results.append((res.first_index, res.size))
    engine.dispose()
    out.put((tag, results))


@pytest.mark.slow
def test_two_processes_append_one_linear_log(
    store: LogStore, engine: Engine, request: pytest.FixtureRequest
) -> None:
    url, connect_args = _engine_target(engine, request)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    batches, per_batch = 15, 20
    procs = [
        ctx.Process(
            target=_append_worker,
            args=(url, connect_args, tag, batches, per_batch, start, out),
        )
        for tag in ("p1", "p2")
    ]
    for p in procs:
        p.start()
    results: dict[str, list[tuple[int, int]]] = {}
    try:
        deadline = time.monotonic() + 180
        while len(results) < len(procs):
            # Poll, so that a worker that died is reported now rather than after the timeout.
            assert time.monotonic() < deadline, "workers did not finish in time"
            if any(p.exitcode not in (None, 0) for p in procs):
                pytest.fail(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
            try:
                tag, rs = out.get(timeout=0.5)
            except queue.Empty:
                continue
            results[tag] = rs
    finally:
        for p in procs:
            p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]

    ranges = sorted(r for rs in results.values() for r in rs)
    # Every batch got a contiguous block; blocks tile [0, N) without overlap or gap.
    assert ranges[0][0] == 0
    for (_, end), (nxt, _) in itertools.pairwise(ranges):
        assert end == nxt
    total = 2 * batches * per_batch
    assert ranges[-1][1] == total
    assert assert_linear_log(store, Verifier.parse_vkey(make_signer().vkey())) == total
    assert [c.size for c in store.checkpoints(limit=1000)] == [end for _, end in ranges]
    # Each process's own batches landed in the order it submitted them.
    for rs in results.values():
        assert rs == sorted(rs)


# -- leader lock -------------------------------------------------------------------------------


def _hand_over(first: SequencerLock, second: SequencerLock) -> None:
    # After the leader let go: the other one takes the lock, and the context manager works.
    assert not first.held
    assert second.try_acquire()
    second.release()
    with first:
        assert first.held
    assert not first.held


@pytest.mark.postgres
def test_sequencer_lock_elects_one_leader(pg_schema: Any) -> None:
    from api.store import upgrade

    engine = pg_schema.engine()
    try:
        upgrade(engine)
        first, second = SequencerLock(engine), SequencerLock(engine)
        assert first.try_acquire()
        assert not second.try_acquire()
        # The leader's own batches take a different (transaction) lock: no self-deadlock.
        result = Sequencer(engine, origin=ORIGIN, signer=make_signer()).integrate([entry("l", 0)])
        assert result.size == 1
        first.release()
        _hand_over(first, second)
    finally:
        engine.dispose()


def test_sequencer_lock_elects_one_leader_on_a_sqlite_file(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        first, second = SequencerLock(engine), SequencerLock(engine)
        assert first.try_acquire() and first.held
        assert not second.try_acquire() and not second.held
        assert (tmp_path / "l.db.leader").exists()
        # Another process sees the lock too (flock is per open file, across processes).
        probe = (
            "import fcntl, sys\n"
            "f = open(sys.argv[1], 'a+b')\n"
            "try:\n"
            "    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "    print('free')\n"
            "except BlockingIOError:\n"
            "    print('held')\n"
        )
        run = [sys.executable, "-c", probe, str(tmp_path / "l.db.leader")]
        assert subprocess.run(run, capture_output=True, text=True, check=True).stdout == "held\n"
        first.release()
        assert not first.held
        assert subprocess.run(run, capture_output=True, text=True, check=True).stdout == "free\n"
        _hand_over(first, second)
    finally:
        engine.dispose()


def test_sequencer_lock_is_trivial_in_memory() -> None:
    engine = make_engine("sqlite://")
    try:
        first, second = SequencerLock(engine), SequencerLock(engine)
        assert first.try_acquire() and second.try_acquire()
        first.release()
        second.release()
        assert not first.held
    finally:
        engine.dispose()
