"""Offline-first capture queue and device state in one SQLite file (SPEC §11.5).

Captures are signed and stored *before* anything is sent: ``seq``/``prev`` come from the
producer head kept in the same file and are advanced in the same transaction that stores the
capture, so a crash can never sign two captures with one ``seq`` nor lose a signed one. Sync
sends pending captures in order and stores each receipt in its own transaction. A crash between
the server's answer and the local commit only means the capture is sent again; the server's
idempotency (same capture, same receipt, ``duplicate: true``) makes that safe.

The same file keeps the last log checkpoint this device verified (for consistency checks), the
log key it pinned on first use, and small counters (SSCC serial references, serials issued).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ledger.capture import build_capture, to_wire
from scanner.client import ApiError, LedgerClient, Unreachable
from scanner.keys import DeviceKey

__all__ = ["RECALL_KIND", "CaptureQueue", "QueuedCapture", "StoredCheckpoint", "SyncReport"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS producer_head (
    producer   TEXT PRIMARY KEY,
    next_seq   INTEGER NOT NULL,
    prev_id    TEXT
);
CREATE TABLE IF NOT EXISTS captures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    producer    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    capture_id  TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    wire        TEXT NOT NULL,
    codes       TEXT NOT NULL,
    created     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    receipt     TEXT,
    error       TEXT,
    UNIQUE (producer, seq)
);
CREATE INDEX IF NOT EXISTS captures_status ON captures (status, id);
CREATE TABLE IF NOT EXISTS checkpoint (
    origin  TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    root    TEXT NOT NULL,
    note    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_key (
    origin  TEXT PRIMARY KEY,
    vkey    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
"""

# Statuses a capture moves through. "rejected" stops the sync: later captures chain on it.
PENDING: Final = "pending"
SENT: Final = "sent"
REJECTED: Final = "rejected"
#: Captures of this kind are sent to ``POST /v1/recalls`` instead of ``/v1/captures``.
RECALL_KIND: Final = "recall"


@dataclass(frozen=True, slots=True)
class QueuedCapture:
    """A signed capture in the queue.

    Attributes:
        id: Local order (send order).
        producer: Producer name.
        seq: The capture's seq in the producer chain.
        capture_id: Hex SHA-256 of the payload bytes.
        kind: Workflow name (commission, ship, ...).
        wire: The JSON wire form.
        codes: For each event index, the codes it concerns (for per-code reports).
        status: ``pending``, ``sent`` or ``rejected``.
        receipt: The server's receipt once sent.
        error: Why the server rejected it.
    """

    id: int
    producer: str
    seq: int
    capture_id: str
    kind: str
    wire: dict[str, Any]
    codes: list[list[str]]
    status: str
    receipt: dict[str, Any] | None
    error: dict[str, Any] | None


@dataclass(slots=True)
class SyncReport:
    """What one sync did.

    Attributes:
        sent: Captures the server accepted this time (new).
        duplicates: Captures the server already had (resends after a crash or lost answer).
        pending: Captures still waiting.
        rejected: Captures the server refused (sync stops at the first).
        unreachable: Why the server could not be reached, if it could not.
        receipts: ``(queued capture, receipt)`` for each capture acknowledged this time.
    """

    sent: int = 0
    duplicates: int = 0
    pending: int = 0
    rejected: list[QueuedCapture] = field(default_factory=list)
    unreachable: str | None = None
    receipts: list[tuple[QueuedCapture, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """The last checkpoint this device verified for one log.

    Attributes:
        origin: Log origin.
        size: Tree size.
        root: Root hash (hex).
        note: The signed note text.
    """

    origin: str
    size: int
    root: str
    note: str


class CaptureQueue:
    """The device's SQLite file: capture queue, producer head, checkpoints, counters.

    Args:
        path: The SQLite file (created if missing).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Autocommit mode; every multi-statement change runs in an explicit BEGIN IMMEDIATE.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed capture survives power loss, not only a killed process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> CaptureQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ signing

    def head(self, producer: str) -> tuple[int, str | None]:
        """The producer's next ``seq`` and the capture id ``prev`` must name."""
        row = self._db.execute(
            "SELECT next_seq, prev_id FROM producer_head WHERE producer = ?", (producer,)
        ).fetchone()
        return (0, None) if row is None else (int(row[0]), row[1])

    def set_head(self, producer: str, next_seq: int, prev_id: str | None) -> None:
        """Set the producer head (a device re-registered on a server that knows its chain)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO producer_head VALUES (?, ?, ?) ON CONFLICT(producer) DO UPDATE "
                "SET next_seq = excluded.next_seq, prev_id = excluded.prev_id",
                (producer, next_seq, prev_id),
            )

    def sign_and_store(
        self,
        key: DeviceKey,
        events: Sequence[Mapping[str, Any]],
        *,
        kind: str,
        created: str,
        codes: Sequence[Sequence[str]] | None = None,
    ) -> QueuedCapture:
        """Sign one capture at the producer head and store it, atomically (SPEC §11.5 step 1).

        Args:
            key: The device key.
            events: EPCIS events, in leaf order.
            kind: Workflow name, for reports.
            created: RFC 3339 UTC time for the payload.
            codes: Per event, the scanned codes it concerns (defaults to none).

        Returns:
            The queued capture (status ``pending``).
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT next_seq, prev_id FROM producer_head WHERE producer = ?", (key.producer,)
            ).fetchone()
            seq, prev = (0, None) if row is None else (int(row[0]), row[1])
            signed = build_capture(
                key.private,
                producer=key.producer,
                seq=seq,
                prev=prev,
                events=events,
                created=created,
            )
            wire = to_wire(signed)
            code_lists = [list(c) for c in (codes or [[] for _ in events])]
            cur = db.execute(
                "INSERT INTO captures (producer, seq, capture_id, kind, wire, codes, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.producer,
                    seq,
                    signed.capture_id,
                    kind,
                    json.dumps(wire, ensure_ascii=False, separators=(",", ":")),
                    json.dumps(code_lists, ensure_ascii=False),
                    created,
                ),
            )
            db.execute(
                "INSERT INTO producer_head VALUES (?, ?, ?) ON CONFLICT(producer) DO UPDATE "
                "SET next_seq = excluded.next_seq, prev_id = excluded.prev_id",
                (key.producer, seq + 1, signed.capture_id),
            )
            local_id = int(cur.lastrowid or 0)
        return QueuedCapture(
            local_id,
            key.producer,
            seq,
            signed.capture_id,
            kind,
            wire,
            code_lists,
            PENDING,
            None,
            None,
        )

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _row(row: Sequence[Any]) -> QueuedCapture:
        return QueuedCapture(
            id=int(row[0]),
            producer=row[1],
            seq=int(row[2]),
            capture_id=row[3],
            kind=row[4],
            wire=json.loads(row[5]),
            codes=json.loads(row[6]),
            status=row[7],
            receipt=json.loads(row[8]) if row[8] else None,
            error=json.loads(row[9]) if row[9] else None,
        )

    _COLS: Final = "id, producer, seq, capture_id, kind, wire, codes, status, receipt, error"

    def captures(self, status: str | None = None) -> list[QueuedCapture]:
        """All captures (or those with ``status``) in send order."""
        if status is None:
            rows = self._db.execute(f"SELECT {self._COLS} FROM captures ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {self._COLS} FROM captures WHERE status = ? ORDER BY id", (status,)
            ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, capture_id: str) -> QueuedCapture | None:
        """One capture by id."""
        row = self._db.execute(
            f"SELECT {self._COLS} FROM captures WHERE capture_id = ?", (capture_id,)
        ).fetchone()
        return None if row is None else self._row(row)

    def counts(self) -> dict[str, int]:
        """Number of captures per status."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM captures GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    # ------------------------------------------------------------------ sending

    def sync(
        self,
        client: LedgerClient,
        *,
        on_receipt: Callable[[QueuedCapture, dict[str, Any]], None] | None = None,
    ) -> SyncReport:
        """Send pending captures in order and store receipts (SPEC §11.5 step 2).

        Stops at the first transient failure (the rest stay queued) or at the first
        rejection (later captures chain on the rejected one, so sending them is pointless).

        Args:
            client: The HTTP client.
            on_receipt: Called after each receipt is stored.

        Returns:
            The report.
        """
        report = SyncReport()
        rows = self._db.execute(
            "SELECT id FROM captures WHERE status = ? ORDER BY id", (PENDING,)
        ).fetchall()
        for (local_id,) in rows:
            row = self._db.execute(
                f"SELECT {self._COLS} FROM captures WHERE id = ?", (local_id,)
            ).fetchone()
            qc = self._row(row)
            if qc.status != PENDING:  # another process sent it meanwhile
                continue
            try:
                # A recall goes through /v1/recalls: ownership is checked before anything is
                # written, and the receipt counts the packs marked (SPEC §11.7).
                if qc.kind == RECALL_KIND:
                    receipt = client.post_recall(qc.wire)
                else:
                    receipt = client.post_capture(qc.wire)
            except Unreachable as e:
                report.unreachable = str(e)
                break
            except ApiError as e:
                if e.status >= 500:  # a server bug is not the capture's fault: keep it queued
                    report.unreachable = str(e)
                    break
                problem = {"status": e.status, **e.problem}
                self._db.execute(
                    "UPDATE captures SET status = ?, error = ? WHERE id = ?",
                    (REJECTED, json.dumps(problem, ensure_ascii=False), local_id),
                )
                report.rejected.append(
                    self._row(
                        self._db.execute(
                            f"SELECT {self._COLS} FROM captures WHERE id = ?", (local_id,)
                        ).fetchone()
                    )
                )
                break
            if receipt.get("capture_id") not in (None, qc.capture_id):
                report.unreachable = (
                    f"server receipt names capture {receipt.get('capture_id')}, "
                    f"expected {qc.capture_id}"
                )
                break
            # One statement, autocommit: the receipt and the status change land together.
            self._db.execute(
                "UPDATE captures SET status = ?, receipt = ? WHERE id = ? AND status = ?",
                (SENT, json.dumps(receipt, ensure_ascii=False), local_id, PENDING),
            )
            if receipt.get("duplicate"):
                report.duplicates += 1
            else:
                report.sent += 1
            report.receipts.append((qc, receipt))
            if on_receipt is not None:
                on_receipt(qc, receipt)
        report.pending = self.counts().get(PENDING, 0)
        return report

    # ------------------------------------------------------------------ log state

    def last_checkpoint(self, origin: str) -> StoredCheckpoint | None:
        """The last checkpoint verified for ``origin``."""
        row = self._db.execute(
            "SELECT origin, size, root, note FROM checkpoint WHERE origin = ?", (origin,)
        ).fetchone()
        return None if row is None else StoredCheckpoint(row[0], int(row[1]), row[2], row[3])

    def save_checkpoint(self, cp: StoredCheckpoint) -> None:
        """Remember a verified checkpoint (only ever a larger tree replaces a smaller one)."""
        self._db.execute(
            "INSERT INTO checkpoint VALUES (?, ?, ?, ?) ON CONFLICT(origin) DO UPDATE SET "
            "size = excluded.size, root = excluded.root, note = excluded.note "
            "WHERE excluded.size >= checkpoint.size",
            (cp.origin, cp.size, cp.root, cp.note),
        )

    def pinned_log_key(self, origin: str) -> str | None:
        """The log vkey pinned for ``origin`` (trust on first use or set at init)."""
        row = self._db.execute("SELECT vkey FROM log_key WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else str(row[0])

    def pin_log_key(self, origin: str, vkey: str) -> None:
        """Pin the log key for ``origin`` (never silently replaced)."""
        self._db.execute("INSERT OR IGNORE INTO log_key VALUES (?, ?)", (origin, vkey))

    def any_pinned_origin(self) -> str | None:
        """The origin of the first pinned log, if any."""
        row = self._db.execute("SELECT origin FROM log_key ORDER BY rowid LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ counters

    def take(self, name: str, count: int, *, start: int = 0) -> int:
        """Reserve ``count`` consecutive values of counter ``name``; returns the first."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            first = start if row is None else max(int(row[0]), start)
            db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                "SET value = excluded.value",
                (name, first + count),
            )
        return first

    def counter(self, name: str) -> int:
        """Current value of counter ``name`` (0 if never used)."""
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])
