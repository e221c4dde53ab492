"""SQLite WAL checkpoints in a background thread, off the writer's critical path (ADR 0015).

In WAL mode with ``synchronous=NORMAL`` a commit only appends pages to the ``-wal`` file; the
expensive part of durability is the *checkpoint* that copies those pages into the database
file and syncs both. By default SQLite runs it inside whichever commit pushes the WAL past
1,000 pages, so every few captures one writer transaction pays for it while holding the
single write lock. With background checkpoints:

* every connection's ``wal_autocheckpoint`` is raised to :data:`FALLBACK_PAGES` — a safety net
  that bounds the WAL if the thread ever falls behind or dies, not the normal path;
* :func:`api.store.db.write_transaction` calls :meth:`WalCheckpointer.notify` after each commit
  and a daemon thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection. PASSIVE
  never takes the write lock and never waits for readers, so writers go on while it copies,
  and the sqlite3 module releases the GIL while it runs: on a machine with a second core the
  copying and syncing happen there.

Durability is unchanged: a committed transaction is in the WAL either way, and SQLite
recovers the WAL on open whatever the checkpoint state (https://sqlite.org/wal.html).

The thread starts on the first notification and exits after :attr:`idle_s` seconds without
one (many short-lived engines in tests and CLI commands leave no threads behind).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Final
from urllib.parse import quote

__all__ = ["FALLBACK_PAGES", "WalCheckpointer"]

log = logging.getLogger(__name__)

#: ``wal_autocheckpoint`` of every connection while a background checkpointer is in charge:
#: ~64 MiB of 4 KiB pages. The writer only checkpoints itself past this size.
FALLBACK_PAGES: Final = 16_384


class WalCheckpointer:
    """Runs PASSIVE WAL checkpoints of one SQLite database file in a daemon thread.

    Args:
        path: The database file.
        idle_s: The thread exits after this long without a notification.
        busy_timeout_ms: Busy timeout of the thread's own connection.
    """

    def __init__(
        self,
        path: str,
        *,
        idle_s: float = 10.0,
        busy_timeout_ms: int = 5000,
    ) -> None:
        self.path = path
        self.idle_s = idle_s
        self._busy_timeout_ms = busy_timeout_ms
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Checkpoint passes that ran (for tests and diagnostics).
        self.passes = 0
        #: WAL frames in the last pass's WAL, and how many of them it copied.
        self.last: tuple[int, int] = (0, 0)

    @property
    def running(self) -> bool:
        """Whether the thread is alive (it exits when idle and restarts on :meth:`notify`)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def notify(self) -> None:
        """A write transaction committed: wake (or start) the thread. Never blocks or raises."""
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(
                target=self._run, name="yima-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread after its current pass (idempotent); later notifications are ignored."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One PASSIVE checkpoint on ``conn``; returns (WAL frames, frames checkpointed)."""
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        self.last = (int(row[1]), int(row[2]))
        return self.last

    def _connect(self) -> sqlite3.Connection:
        # mode=rw: never create a database file that is not there.
        uri = "file:" + quote(self.path) + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        return conn

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                if not self._wake.wait(self.idle_s):
                    with self._lock:
                        # Exit only if no notification raced in while we decided.
                        if not self._wake.is_set():
                            self._thread = None
                            return
                self._wake.clear()
                if self._closed:
                    return
                try:
                    if conn is None:
                        conn = self._connect()
                    # Notifications that arrive during a pass coalesce into the next one.
                    self.checkpoint(conn)
                except sqlite3.Error as exc:
                    # The writer's fallback autocheckpoint still bounds the WAL; try again on
                    # the next commit.
                    log.warning("background WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            if conn is not None:
                conn.close()
