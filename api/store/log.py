"""Reads over the durable log, and the store's row types.

:class:`LogStore` answers everything the service, the proof endpoints and the audits ask of the
database: entries (exact leaf bytes), checkpoints (exact signed notes), proofs generated from
stored complete-subtree hashes (one query per proof), the item index, captures (idempotency)
and producer heads. Appending goes through the one writer, :class:`api.store.sequencer.Sequencer`.

Rows leave the store as frozen dataclasses; table rows never cross the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    RowMapping,
    Select,
    and_,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite

from api.store import tables as t
from ledger import merkle
from ledger.canonical import MAX_DEPTH, canonical_json, is_fast_path_safe
from ledger.errors import NotFoundError

_orjson: Any
try:  # the optional accelerator of ledger.canonical; leaves are built without it otherwise
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson = None

if TYPE_CHECKING:
    from api.store.sequencer import IntegrationResult, PendingEntry, Sequencer

__all__ = [
    "AlertRow",
    "CaptureRow",
    "CheckpointRow",
    "CosignatureRow",
    "DbHashReader",
    "ItemRow",
    "LogStore",
    "ProducerHead",
    "make_leaf",
]

#: Version of the leaf envelope (the ``v`` member of every leaf).
LEAF_VERSION = 1


def make_leaf(
    kind: str,
    body: Mapping[str, Any],
    *,
    raw: Mapping[str, bytes] | None = None,
    plain: bool = False,
) -> bytes:
    """Build a log leaf: RFC 8785 canonical JSON of ``{"v": 1, "kind": kind, **body}``.

    Args:
        kind: The entry kind, e.g. ``"event"``, ``"org"``, ``"key"``.
        body: The rest of the envelope; must not contain ``v`` or ``kind``.
        raw: Members of ``body`` whose canonical JSON the caller holds already (a capture's
            events, canonicalised on receipt by :func:`ledger.capture.from_wire`):
            ``raw[k]`` must be exactly ``canonical_json(body[k])``. They are spliced in
            verbatim instead of being walked and serialised again; the result is the same
            bytes (RFC 8785 serialises a member independently of its container).
        plain: With ``raw``: the caller has checked that every other member of ``body`` is
            one :func:`ledger.canonical.is_fast_path_safe` accepts, so the walk that proves it
            is skipped (the ingest path checks a capture's shared members once, not per leaf).

    Returns:
        The exact leaf bytes to store and hash.

    Raises:
        ValueError: ``body`` tries to set ``v`` or ``kind``, or ``raw`` names a member
            ``body`` does not have.
    """
    if "v" in body or "kind" in body:
        raise ValueError("the leaf body must not set 'v' or 'kind'")
    if raw:
        if not raw.keys() <= body.keys():
            raise ValueError(f"raw members {sorted(raw)} are not all in the body")
        spliced = _splice(kind, body, raw, plain)
        if spliced is not None:
            return spliced
    return canonical_json({"v": LEAF_VERSION, "kind": kind, **body})


# The splice puts a member one level deeper than it was canonicalised at: a member whose bytes
# open this many containers or more could make the envelope nest as deep as canonical.MAX_DEPTH,
# where canonical_json may raise (its reference path allows one level less than its fast
# path); such leaves take the full path, so that they raise exactly as before.
_SPLICE_MAX_CONTAINERS = MAX_DEPTH - 1


def _splice(
    kind: str, body: Mapping[str, Any], raw: Mapping[str, bytes], plain: bool
) -> bytes | None:
    """``canonical_json`` of the envelope with the ``raw`` members spliced in, or None when the
    rest of it is not proven to take canonical_json's orjson path (SPEC §4.1)."""
    if _orjson is None:
        return None
    rest = {"v": LEAF_VERSION, "kind": kind}
    for key, value in body.items():
        if key not in raw:
            rest[key] = value
    if not (plain and type(kind) is str) and not is_fast_path_safe(rest):
        return None
    for key, data in raw.items():
        # Counts every bracket, those inside strings too: an upper bound of the nesting.
        if len(data) - len(data.translate(None, b"{[")) > _SPLICE_MAX_CONTAINERS:
            return None
        rest[key] = _orjson.Fragment(data)
    # The options of ledger.canonical's fast path (keys sorted; every key here is ASCII).
    out: bytes = _orjson.dumps(rest, option=_orjson.OPT_SORT_KEYS)
    return out


def _utc(value: datetime) -> datetime:
    # SQLite has no time zone type: values come back naive, and were written as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A signed checkpoint as stored.

    Attributes:
        size: Tree size.
        root: 32-byte root hash at that size.
        note: The exact signed-note bytes (checkpoint body, blank line, signature lines).
        created: When the sequencer signed it (UTC).
    """

    size: int
    root: bytes
    note: bytes
    created: datetime


@dataclass(frozen=True, slots=True)
class CosignatureRow:
    """A witness cosignature line collected for a checkpoint."""

    size: int
    witness: str
    line: str
    created: datetime


@dataclass(frozen=True, slots=True)
class CaptureRow:
    """A signed capture as received, and where its entries landed in the log.

    Attributes:
        capture_id: SHA-256 hex of the payload bytes.
        producer: The producer (key name) that signed it.
        seq: The producer's sequence number.
        payload: Exact payload bytes that were signed.
        signature: Exact signature bytes.
        first_index: Log index of its first entry.
        count: Number of log entries it produced.
        checkpoint_size: Size of the checkpoint signed in the same batch (covers every entry).
        receipt_json: Canonical JSON receipt, identical on every re-submission.
        created: When it was integrated (UTC).
    """

    capture_id: str
    producer: str
    seq: int
    payload: bytes
    signature: bytes
    first_index: int
    count: int
    checkpoint_size: int
    receipt_json: str
    created: datetime


@dataclass(frozen=True, slots=True)
class ProducerHead:
    """The last accepted capture of a producer (its seq/prev chain head)."""

    producer: str
    seq: int
    capture_id: str
    updated_index: int


@dataclass(frozen=True, slots=True)
class ItemRow:
    """The current state of one item, with ``state_json`` the full lifecycle state."""

    code: str
    product_gtin: str | None
    lot: str | None
    expiry: date | None
    status: str
    custodian: str | None
    location: str | None
    parent: str | None
    in_transit_to: str | None
    recalled: bool
    quarantined: bool
    dispense_count: int
    state_json: str
    updated_index: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert and the log entry that is its evidence."""

    id: int
    log_index: int
    kind: str
    rule: str
    org: str | None
    codes: tuple[str, ...]
    message: str
    created: datetime


class DbHashReader:
    """A :class:`ledger.merkle.HashReader` over the stored tree: one ``SELECT`` per call.

    Level 0 (the leaf hashes) is read from ``entries.leaf_hash``, every higher level from
    ``merkle_nodes``, in one ``UNION ALL`` statement. :mod:`ledger.merkle` batches every hash a
    root or proof needs into one ``get_hashes`` call, so a proof costs one round trip whatever
    the tree size.

    Args:
        conn: The connection (and transaction) to read in.
    """

    __slots__ = ("_conn", "queries")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        #: How many SELECTs this reader issued (tests assert the one-query promise).
        self.queries = 0

    def get_hashes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hashes at ``coords``, in order.

        Raises:
            NotFoundError: A coordinate is not stored (beyond the tree, or a damaged store).
        """
        if not coords:
            return []
        n = t.merkle_nodes.c
        e = t.entries.c
        wanted = list(dict.fromkeys(coords))
        leaves = [index for level, index in wanted if level == 0]
        inner = [(level, index) for level, index in wanted if level > 0]
        parts: list[Select[Any]] = []
        if leaves:
            parts.append(
                select(literal(0, Integer).label("level"), e.idx, e.leaf_hash).where(
                    e.idx.in_(leaves)
                )
            )
        if inner:
            # OR of primary-key equalities, not a row-value IN: SQLite plans the IN form as a
            # full scan of merkle_nodes, the OR form as one primary-key search per coordinate.
            parts.append(
                select(n.level, n.idx, n.hash).where(
                    or_(*(and_(n.level == level, n.idx == index) for level, index in inner))
                )
            )
        query = parts[0] if len(parts) == 1 else union_all(*parts)
        self.queries += 1
        found = {(row[0], row[1]): row[2] for row in self._conn.execute(query)}
        out: list[bytes] = []
        for coord in coords:
            h = found.get(coord)
            if h is None:
                raise NotFoundError(f"no stored subtree at level {coord[0]}, index {coord[1]}")
            out.append(bytes(h))
        return out


class LogStore:
    """Read access to the log (plus the few non-log writes: cosignatures).

    Args:
        engine: An engine from :func:`api.store.db.make_engine`, migrated with
            :func:`api.store.db.upgrade`.
        sequencer: The writer :meth:`append` delegates to; None for a read-only store.
    """

    def __init__(self, engine: Engine, *, sequencer: Sequencer | None = None) -> None:
        self._engine = engine
        self._sequencer = sequencer

    @property
    def engine(self) -> Engine:
        """The engine this store reads."""
        return self._engine

    # -- writing -------------------------------------------------------------------------------

    def append(self, batch: Sequence[PendingEntry]) -> IntegrationResult:
        """Integrate a batch through the sequencer (see :meth:`Sequencer.integrate`).

        Raises:
            RuntimeError: The store was opened read-only (no sequencer).
        """
        if self._sequencer is None:
            raise RuntimeError("this LogStore is read-only: it was opened without a sequencer")
        return self._sequencer.integrate(batch)

    def add_cosignature(self, size: int, witness: str, line: str, *, at: datetime) -> None:
        """Record (or refresh) a witness's cosignature line for the checkpoint of ``size``.

        A witness cosigns again with a newer timestamp; the newest line replaces the old one.

        Args:
            size: Size of the cosigned checkpoint (must be stored).
            witness: The witness key name.
            line: The exact signature line (``— name base64``), without newline.
            at: When it was received.

        Raises:
            NotFoundError: No checkpoint of that size is stored.
        """
        c = t.cosignatures
        values = {"size": size, "witness": witness, "line": line, "created": at}
        with self._engine.begin() as conn:
            if self._checkpoint_row(conn, size) is None:
                raise NotFoundError(f"no checkpoint of size {size}")
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(c)
            conn.execute(
                insert.values(values).on_conflict_do_update(
                    index_elements=[c.c.size, c.c.witness],
                    set_={"line": line, "created": at},
                )
            )

    # -- the tree ------------------------------------------------------------------------------

    def size(self) -> int:
        """The number of entries in the log."""
        with self._engine.connect() as conn:
            return tree_size(conn)

    def root(self, size: int) -> bytes:
        """The root hash at ``size``, recomputed from stored hashes (one query).

        Raises:
            NotFoundError: ``size`` is beyond the log.
        """
        with self._engine.connect() as conn:
            return merkle.root(size, DbHashReader(conn))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (one query).

        Raises:
            NotFoundError: ``index`` is not below ``size`` or ``size`` is beyond the log.
        """
        with self._engine.connect() as conn:
            return merkle.inclusion_proof(index, size, DbHashReader(conn))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The RFC 9162 consistency proof from size ``old`` to ``new`` (one query).

        Raises:
            NotFoundError: ``old > new`` or ``new`` is beyond the log.
        """
        with self._engine.connect() as conn:
            return merkle.consistency_proof(old, new, DbHashReader(conn))

    # -- entries -------------------------------------------------------------------------------

    def get_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries ``[start, end)`` as ``(index, exact leaf bytes)``, in log order.

        Indices past the end of the log are simply absent.
        """
        e = t.entries.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(e.idx, e.leaf).where(e.idx >= start, e.idx < end).order_by(e.idx)
            )
            return [(row[0], bytes(row[1])) for row in rows]

    def leaf_index(self, leaf_hash: bytes) -> int | None:
        """The first log index whose leaf hashes to ``leaf_hash``, or None."""
        e = t.entries.c
        with self._engine.connect() as conn:
            return conn.execute(
                select(func.min(e.idx)).where(e.leaf_hash == leaf_hash)
            ).scalar_one_or_none()

    def event_index(self, event_id: str) -> int | None:
        """The log index of the event with this CBV 2.0 event ID, or None."""
        e = t.entries.c
        with self._engine.connect() as conn:
            return conn.execute(
                select(e.idx).where(e.kind == "event", e.event_id == event_id)
            ).scalar_one_or_none()

    # -- checkpoints ---------------------------------------------------------------------------

    def latest_checkpoint(self) -> CheckpointRow | None:
        """The newest signed checkpoint, or None before the first batch."""
        with self._engine.connect() as conn:
            return latest_checkpoint(conn)

    def checkpoint_at(self, size: int) -> CheckpointRow | None:
        """The checkpoint signed at exactly ``size``, or None."""
        with self._engine.connect() as conn:
            return self._checkpoint_row(conn, size)

    def checkpoints(self, start: int = 0, limit: int = 1000) -> list[CheckpointRow]:
        """Signed checkpoints with ``size >= start``, oldest first."""
        c = t.checkpoints.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(c.size, c.root, c.note, c.created)
                .where(c.size >= start)
                .order_by(c.size)
                .limit(limit)
            )
            return [_checkpoint(row) for row in rows]

    def cosignatures(self, size: int) -> list[CosignatureRow]:
        """Witness cosignature lines collected for the checkpoint of ``size``."""
        c = t.cosignatures.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(c.size, c.witness, c.line, c.created)
                .where(c.size == size)
                .order_by(c.witness)
            )
            return [CosignatureRow(r[0], r[1], r[2], _utc(r[3])) for r in rows]

    @staticmethod
    def _checkpoint_row(conn: Connection, size: int) -> CheckpointRow | None:
        c = t.checkpoints.c
        row = conn.execute(
            select(c.size, c.root, c.note, c.created).where(c.size == size)
        ).one_or_none()
        return None if row is None else _checkpoint(row)

    # -- captures and producers (idempotency) --------------------------------------------------

    def find_capture(self, producer: str, seq: int) -> CaptureRow | None:
        """The capture ``producer`` submitted with ``seq``, or None.

        The service answers a re-submission of the same capture with the stored receipt and
        refuses a different capture that reuses the seq (ConflictError / 409).
        """
        c = t.captures.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.captures).where(c.producer == producer, c.seq == seq)
            ).one_or_none()
            return None if row is None else _capture(row._mapping)

    def get_capture(self, capture_id: str) -> CaptureRow | None:
        """The capture with this id (SHA-256 hex of its payload), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.captures).where(t.captures.c.capture_id == capture_id)
            ).one_or_none()
            return None if row is None else _capture(row._mapping)

    def producer_head(self, producer: str) -> ProducerHead | None:
        """The producer's last accepted capture (the head its next ``prev`` must name)."""
        h = t.producer_heads.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(h.producer, h.seq, h.capture_id, h.updated_index).where(
                    h.producer == producer
                )
            ).one_or_none()
            return None if row is None else ProducerHead(row[0], row[1], row[2], row[3])

    # -- items and alerts ----------------------------------------------------------------------

    def item(self, code: str) -> ItemRow | None:
        """The current state of the item with this canonical code, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(t.items).where(t.items.c.code == code)).one_or_none()
            return None if row is None else _item(row._mapping)

    def items(self, codes: Iterable[str]) -> dict[str, ItemRow]:
        """Current states of several items at once (absent codes are left out)."""
        wanted = list(dict.fromkeys(codes))
        if not wanted:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.items).where(t.items.c.code.in_(wanted)))
            return {row.code: _item(row._mapping) for row in rows}

    def events_of(self, code: str) -> list[tuple[int, bytes]]:
        """Every log entry indexed under ``code``, as ``(index, exact leaf bytes)``, in order."""
        ie = t.item_events.c
        e = t.entries.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(e.idx, e.leaf)
                .join(t.item_events, ie.log_index == e.idx)
                .where(ie.code == code)
                .order_by(e.idx)
            )
            return [(row[0], bytes(row[1])) for row in rows]

    def alerts(self, *, start: int = 0, limit: int = 100) -> list[AlertRow]:
        """Alerts whose evidence entry is at ``start`` or later, in log order."""
        a = t.alerts.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t.alerts).where(a.log_index >= start).order_by(a.id).limit(limit)
            )
            return [_alert(row._mapping) for row in rows]

    def alerts_at(self, index: int) -> list[AlertRow]:
        """Alerts raised by the entry at ``index``."""
        a = t.alerts.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.alerts).where(a.log_index == index).order_by(a.id))
            return [_alert(row._mapping) for row in rows]


# -- helpers shared with the sequencer ---------------------------------------------------------


def tree_size(conn: Connection) -> int:
    """The number of entries (one more than the highest index; indices are contiguous)."""
    e = t.entries.c
    top = conn.execute(select(func.max(e.idx))).scalar_one_or_none()
    return 0 if top is None else int(top) + 1


def latest_checkpoint(conn: Connection, *, for_update: bool = False) -> CheckpointRow | None:
    """The newest checkpoint row, optionally locked (``FOR UPDATE``, PostgreSQL only)."""
    c = t.checkpoints.c
    query = select(c.size, c.root, c.note, c.created).order_by(c.size.desc()).limit(1)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _checkpoint(row)


def _checkpoint(row: Any) -> CheckpointRow:
    return CheckpointRow(
        size=row[0], root=bytes(row[1]), note=row[2].encode("utf-8"), created=_utc(row[3])
    )


def _capture(m: RowMapping) -> CaptureRow:
    return CaptureRow(
        capture_id=m["capture_id"],
        producer=m["producer"],
        seq=m["seq"],
        payload=bytes(m["payload"]),
        signature=bytes(m["signature"]),
        first_index=m["first_index"],
        count=m["count"],
        checkpoint_size=m["checkpoint_size"],
        receipt_json=m["receipt_json"],
        created=_utc(m["created"]),
    )


def _item(m: RowMapping) -> ItemRow:
    return ItemRow(
        code=m["code"],
        product_gtin=m["product_gtin"],
        lot=m["lot"],
        expiry=m["expiry"],
        status=m["status"],
        custodian=m["custodian"],
        location=m["location"],
        parent=m["parent"],
        in_transit_to=m["in_transit_to"],
        recalled=bool(m["recalled"]),
        quarantined=bool(m["quarantined"]),
        dispense_count=m["dispense_count"],
        state_json=m["state_json"],
        updated_index=m["updated_index"],
    )


def _alert(m: RowMapping) -> AlertRow:
    return AlertRow(
        id=m["id"],
        log_index=m["log_index"],
        kind=m["kind"],
        rule=m["rule"],
        org=m["org"],
        codes=tuple(m["codes"]),
        message=m["message"],
        created=_utc(m["created"]),
    )
