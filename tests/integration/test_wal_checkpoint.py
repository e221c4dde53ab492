"""Background WAL checkpoints on SQLite (api.store.walcheckpoint, docs/adr/0015)."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest
from served import wait_for
from sqlalchemy import Engine, text

from api.store.db import make_engine, wal_checkpointer, write_transaction
from api.store.walcheckpoint import FALLBACK_PAGES, WalCheckpointer


def _fill(engine: Engine, rows: int, start: int = 0) -> None:
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
        conn.execute(
            text("INSERT INTO t (k, v) VALUES (:k, :v)"),
            [{"k": start + i, "v": b"x" * 2000} for i in range(rows)],
        )


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_default_engine_keeps_sqlite_autocheckpoint(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert wal_checkpointer(engine) is None
        assert _autocheckpoint(engine) == 1000
    finally:
        engine.dispose()


def test_memory_and_postgres_style_urls_get_no_thread() -> None:
    engine = make_engine("sqlite://", background_checkpoints=True)
    try:
        assert wal_checkpointer(engine) is None
    finally:
        engine.dispose()


def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    try:
        cp = wal_checkpointer(engine)
        assert cp is not None
        # The writers' own autocheckpoint is only the safety net.
        assert _autocheckpoint(engine) == FALLBACK_PAGES
        _fill(engine, 3000)  # ~1,500 pages: past SQLite's default autocheckpoint
        assert wait_for(lambda: cp.passes >= 1 and cp.last[0] > 0 and cp.last[1] == cp.last[0])
        # The pages are in the database file itself: a reader that ignores the WAL sees them.
        assert path.stat().st_size > 3000 * 2000
        # Data written after a pass is still there and readable (nothing lost either way).
        _fill(engine, 10, start=3000)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 3010
    finally:
        cp = wal_checkpointer(engine)
        assert cp is not None
        cp.stop()
        engine.dispose()


def test_thread_exits_when_idle_and_restarts_on_notify(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = make_engine(f"sqlite:///{path}")
    _fill(engine, 10)
    cp = WalCheckpointer(str(path), idle_s=0.05)
    try:
        cp.notify()
        assert wait_for(lambda: cp.passes == 1)
        assert cp.running or cp.passes == 1
        assert wait_for(lambda: not cp.running)
        cp.notify()
        assert wait_for(lambda: cp.passes == 2)
    finally:
        cp.stop()
        engine.dispose()
    cp.notify()  # ignored after stop: no thread, no error
    time.sleep(0.1)
    assert cp.passes == 2


def test_a_failing_checkpoint_is_logged_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "gone" / "x.db"  # mode=rw: the thread never creates a database
    cp = WalCheckpointer(str(missing), idle_s=0.05)
    with caplog.at_level(logging.WARNING, logger="api.store.walcheckpoint"):
        cp.notify()
        assert wait_for(lambda: "background WAL checkpoint" in caplog.text)
    cp.stop()
    assert not missing.exists()
    assert cp.passes == 0


def test_writer_is_not_blocked_by_a_checkpoint_in_progress(tmp_path: Path) -> None:
    # PASSIVE checkpoints take no write lock: a writer commits while a reader pins the WAL
    # (the checkpoint cannot finish) and the checkpointer keeps trying.
    path = tmp_path / "d.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    reader = sqlite3.connect(str(path), isolation_level=None)
    try:
        _fill(engine, 100)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # holds a read snapshot
        t0 = time.monotonic()
        _fill(engine, 500, start=100)
        assert time.monotonic() - t0 < 5
        cp = wal_checkpointer(engine)
        assert cp is not None
        assert wait_for(lambda: cp.passes >= 2)
        reader.execute("COMMIT")
        _fill(engine, 1, start=600)
        assert wait_for(lambda: cp.last[0] > 0 and cp.last[1] == cp.last[0])
    finally:
        reader.close()
        cp = wal_checkpointer(engine)
        if cp is not None:
            cp.stop()
        engine.dispose()
