"""The single writer: integrates batches of entries into the log and signs a checkpoint.

One call to :meth:`Sequencer.integrate` is one database transaction: it assigns contiguous
indices, writes the exact leaf bytes and every index row the service prepared, stores the new
complete-subtree hashes, and signs and stores a checkpoint — or, on any error, writes nothing.

Serialisation (docs/adr/0003-storage-and-sequencer.md):

* SQLite: the transaction starts with ``BEGIN IMMEDIATE``, which takes the database's single
  write lock before anything is read, so writers (threads or processes) queue there.
* PostgreSQL: the first statement is ``pg_advisory_xact_lock`` on a key derived from the
  schema, so batches from any number of API processes serialise and the tree stays linear.
  The lock is released by COMMIT/ROLLBACK, so a crashed writer can never hold it.
  :class:`SequencerLock` additionally elects one long-running leader (for a background
  batching worker) with a session-level ``pg_try_advisory_lock``.

On top of that, the checkpoint compare-and-swap: inside the transaction the latest checkpoint is
read (``FOR UPDATE`` on PostgreSQL), its root is recomputed from the stored hashes and must
match, and the new checkpoint's size is its primary key — a lost race or a tampered border is a
:class:`~ledger.errors.ConflictError` and nothing is written. A log must never sign a checkpoint
inconsistent with one it signed before (C2SP tlog-checkpoint).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, make_dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Boolean, Connection, Engine, Insert, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from api.store import tables as t
from api.store.db import is_postgres, sqlite_file, write_transaction
from api.store.log import CheckpointRow, DbHashReader, latest_checkpoint, tree_size
from ledger import merkle
from ledger.canonical import canonical_json
from ledger.errors import ConflictError, NotFoundError
from ledger.note import Checkpoint, Signer, sign_note

__all__ = [
    "AlertRecord",
    "CaptureRecord",
    "IntegrationResult",
    "ItemUpdate",
    "KeyRecord",
    "KeyRevocation",
    "OrgRecord",
    "PendingEntry",
    "ProductRecord",
    "Sequencer",
    "SequencerLock",
    "StateCache",
    "StateView",
]

# Advisory-lock namespaces. The key is hashed together with current_schema(), so independent
# logs (one per schema) never block each other, and the two locks never collide: the leader
# lock is held for hours on one connection while that leader's batches take the integrate lock
# on another connection — with one shared key the leader would deadlock against itself.
_INTEGRATE_LOCK_NS = "yima.sequencer.integrate:"
_LEADER_LOCK_NS = "yima.sequencer.leader:"
_LOCK_KEY_SQL = "hashtextextended(:ns || current_schema(), 0)"

_T = TypeVar("_T")


# SQLite writer page cache (KiB) and the conn.info flag that says it was set.
_SQLITE_CACHE_KIB = 65536
_SQLITE_TUNED = "yima.sqlite_writer_tuned"


# -- what the service layer hands over ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """A signed capture, attached to the first of its ``count`` consecutive entries.

    Attributes:
        capture_id: SHA-256 hex of ``payload``.
        producer: The producer (key name) that signed it.
        seq: Its per-producer sequence number (UNIQUE with ``producer``).
        payload: The exact signed payload bytes.
        signature: The exact signature bytes.
        count: How many consecutive entries of the batch, starting with this one, it produced.
    """

    capture_id: str
    producer: str
    seq: int
    payload: bytes
    signature: bytes
    count: int


@dataclass(frozen=True, slots=True)
class ItemUpdate:
    """The new current state of one item; ``updated_index`` becomes the entry's index.

    ``state_json`` is the full lifecycle state as canonical JSON; the other fields are the
    queryable projections of it. ``state`` is optional: the parsed value ``state_json`` was
    built from (for the service, a ``ledger.lifecycle.ItemState``). When it is given the writer
    keeps it in its :class:`StateCache` once the transaction commits, so the next batch need
    not read and parse the row again; when it is None the cache forgets the code. The store
    never looks inside it, and it takes no part in equality.
    """

    code: str
    status: str
    state_json: str
    product_gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    custodian: str | None = None
    location: str | None = None
    parent: str | None = None
    in_transit_to: str | None = None
    recalled: bool = False
    quarantined: bool = False
    dispense_count: int = 0
    state: Any = field(default=None, compare=False, repr=False)


def _positional_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen slots dataclass, several times cheaper than its own.

    The generated ``__init__`` of a frozen dataclass stores each field through
    ``object.__setattr__``; the service builds two :class:`ItemUpdate` per event. This builds
    a plain slots twin with the same layout and then gives it its real class: the result is an
    ordinary frozen instance (equal, hashable, assignment refused). Every field must be given.
    """
    names = tuple(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    twin = make_dataclass(f"_{cls.__name__}Twin", list(names), slots=True)
    if getattr(cls, "__slots__", None) != names or getattr(twin, "__slots__", None) != names:
        raise TypeError(f"{cls.__name__} is not a plain frozen slots dataclass")
    set_class = object.__setattr__

    def make(*values: Any) -> _T:
        obj = twin(*values)
        set_class(obj, "__class__", cls)
        return obj  # type: ignore[no-any-return]

    return make


#: ``ItemUpdate(*values)`` (every field, in order), for the ingest hot path.
new_item_update: Callable[..., ItemUpdate] = _positional_constructor(ItemUpdate)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert whose evidence is the entry it is attached to."""

    kind: str
    rule: str
    message: str
    codes: tuple[str, ...] = ()
    org: str | None = None


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """An organisation registered (or updated) by the entry; ``registered_index`` is set."""

    id: str
    name: str
    role: str
    gln: str | None = None
    company_prefixes: tuple[str, ...] = ()
    data_json: str | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A producer key that becomes valid at the entry's index."""

    org: str
    key_id: str
    name: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class KeyRevocation:
    """A producer key revoked from the entry's index on."""

    org: str
    key_id: str


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """Product master data registered (or updated) by the entry."""

    gtin: str
    owner: str
    name: str
    kind: str
    nmpa_drug_id: str | None = None
    data_json: str | None = None


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """One log entry to integrate: the exact leaf bytes and the index rows that go with it.

    Everything here is prepared (and validated) by the service layer before the sequencer
    runs; the sequencer only fills in the log index and writes it all in one transaction.

    Attributes:
        leaf: The exact leaf bytes (canonical JSON envelope) to store and hash.
        kind: The entry kind (``"event"``, ``"org"``, ``"key"``, ...).
        event_id: CBV 2.0 event hash ID, for ``kind == "event"`` (UNIQUE among events).
        producer: The producer that signed the entry's capture, if any.
        capture_id: The capture the entry came from, if any.
        capture: Set on the first entry of a capture only.
        codes: Canonical item codes to index this entry under (the item → events index).
        items: New current states of items this entry changes.
        alerts: Alerts this entry raises.
        org: Organisation registered by this entry.
        key: Producer key registered by this entry.
        revoke: Producer key revoked by this entry.
        product: Product registered by this entry.
    """

    leaf: bytes
    kind: str
    event_id: str | None = None
    producer: str | None = None
    capture_id: str | None = None
    capture: CaptureRecord | None = None
    codes: tuple[str, ...] = ()
    items: tuple[ItemUpdate, ...] = ()
    alerts: tuple[AlertRecord, ...] = ()
    org: OrgRecord | None = None
    key: KeyRecord | None = None
    revoke: KeyRevocation | None = None
    product: ProductRecord | None = None


#: ``PendingEntry(*values)`` (every field, in order), for the ingest hot path.
new_pending_entry: Callable[..., PendingEntry] = _positional_constructor(PendingEntry)


@dataclass(frozen=True, slots=True)
class IntegrationResult:
    """What one batch produced.

    Attributes:
        first_index: Index of the batch's first entry (== the old tree size).
        size: The new tree size.
        root: The new root hash.
        checkpoint_note: The exact signed checkpoint note stored for ``size``.
    """

    first_index: int
    size: int
    root: bytes
    checkpoint_note: bytes


# -- the writer --------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: What a writer transaction saw when it took the lock: (tree size, root of the latest
#: checkpoint or None). Sizes only grow and a root commits to every leaf, so two equal heads
#: are the same log; every item write is in a batch that moves the head.
_Head = tuple[int, bytes | None]


def _head_of(head: tuple[CheckpointRow | None, int]) -> _Head:
    last, size = head
    return size, None if last is None else last.root


def _checkpoint_root(conn: Connection, size: int) -> bytes | None:
    """The root of the stored checkpoint at ``size``, or None."""
    c = t.checkpoints.c
    root = conn.execute(select(c.root).where(c.size == size)).scalar()
    return None if root is None else bytes(root)


#: Codes per ``IN (...)`` on SQLite (well under its 32,766 bound parameters).
_IN_CHUNK = 900


def _updated_indices(conn: Connection, codes: list[str]) -> dict[str, int]:
    """``items.updated_index`` of those ``codes`` that have an item row."""
    if is_postgres(conn):
        rows = conn.exec_driver_sql(
            "SELECT code, updated_index FROM items WHERE code = ANY(%s::text[])", (codes,)
        )
        return {r[0]: int(r[1]) for r in rows}
    out: dict[str, int] = {}
    for start in range(0, len(codes), _IN_CHUNK):
        part = tuple(codes[start : start + _IN_CHUNK])
        marks = ",".join("?" * len(part))
        rows = conn.exec_driver_sql(
            f"SELECT code, updated_index FROM items WHERE code IN ({marks})", part
        )
        out.update((r[0], int(r[1])) for r in rows)
    return out


class StateCache:
    """Item states the writer committed or read, reused by its next transactions.

    Loading the states a capture touches (one ``SELECT`` per nesting level, then parsing every
    ``state_json``) was a tenth of ingest; consecutive captures mostly touch what the previous
    ones just wrote. The cache belongs to one :class:`Sequencer` (one process) and is only used
    under the writer lock (docs/adr/0014-writer-state-cache.md):

    * It is valid for one log head, the head after this process's last commit. A transaction
      that finds a head which *extends* it (another process or sequencer appended; the
      checkpoint at the cached size still has the cached root) keeps it but checks each
      cached code against ``items.updated_index`` before use: a code changed since the tree
      size at which its value was known valid is dropped and read again. Any other head (a
      restore, a fork) drops it all.
    * It changes only after a commit: write-through of the batch's item rows (their ``state``,
      or forgetting the code when none is given) and of the states the transaction read from
      the database. A rolled-back batch leaves it exactly as it was.
    * It is bounded: past ``max_items`` codes the least recently used go.

    Values are opaque to the store (the service keeps ``ledger.lifecycle.ItemState``s, which
    are immutable); None records a code known to have no item.

    Args:
        max_items: Codes kept (states and known-absent codes); 0 disables the cache.
    """

    def __init__(self, *, max_items: int = 100_000) -> None:
        if max_items < 0:
            raise ValueError("max_items must be >= 0")
        self._max = max_items
        self._head: _Head | None = None
        # code -> (value, the tree size at which the value was known to be the stored one).
        self._values: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        # Values known at a size below this one may have been changed by another writer since
        # (a head this cache did not leave but that extends it): checked before use.
        self._stale_below = 0
        # Transactions are already serialised by the database lock; this lock only orders a
        # finished writer's write-through against the next writer's start.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        #: Cached codes checked against the store after another writer appended, and how
        #: many of them it had changed (dropped and read again).
        self.rechecked = 0
        self.stale = 0

    @property
    def max_items(self) -> int:
        """The bound on cached codes."""
        return self._max

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, code: object) -> bool:
        return code in self._values

    def clear(self) -> None:
        """Forget everything (the next transaction starts cold)."""
        with self._lock:
            self._values.clear()
            self._head = None
            self._stale_below = 0

    def resize(self, max_items: int) -> None:
        """Change the bound, dropping the least recently used codes beyond it (0: disable)."""
        if max_items < 0:
            raise ValueError("max_items must be >= 0")
        with self._lock:
            self._max = max_items
            while len(self._values) > max_items:
                self._values.popitem(last=False)

    def values(self) -> dict[str, Any]:
        """A copy of what is cached and valid at :attr:`head` (code -> value, None for a
        known-absent code), for audits and tests. Values still to be checked because another
        writer appended since they were known are left out."""
        with self._lock:
            below = self._stale_below
            return {code: v for code, (v, at) in self._values.items() if at >= below}

    @property
    def head(self) -> tuple[int, bytes | None] | None:
        """The log head (tree size, latest checkpoint root) the contents are valid for."""
        return self._head

    def _open(
        self,
        head: _Head,
        *,
        extends: Callable[[_Head], bool] | None = None,
        updated: Callable[[list[str]], dict[str, int]] | None = None,
    ) -> StateView:
        """Start a transaction at ``head`` (under the writer lock).

        Args:
            head: The head the transaction found.
            extends: ``old_head -> bool``: does the log at ``head`` extend ``old_head`` (the
                stored checkpoint at its size has its root)? Without it, only the exact head
                this cache was left at keeps it.
            updated: ``codes -> {code: items.updated_index}`` for the codes that have an item
                row, read in this transaction; without it, values that need a check are
                treated as unknown.
        """
        with self._lock:
            old = self._head
            if head != old:
                if (
                    old is not None
                    and self._values
                    and head[0] > old[0]
                    and extends is not None
                    and extends(old)
                ):
                    # Another writer appended [old size, head size): keep, check before use.
                    self._stale_below = head[0]
                else:
                    self._values.clear()
                    self._stale_below = 0
                self._head = head
        return StateView(self, head, updated)

    def _lookup(
        self, codes: Iterable[str], known: dict[str, Any], missing: list[str]
    ) -> dict[str, int]:
        """Fill ``known`` and ``missing``; return the hits that need a check (code -> the size
        their value was known valid at)."""
        values = self._values
        hit = 0
        suspects: dict[str, int] = {}
        with self._lock:
            touch = values.move_to_end
            stale_below = self._stale_below
            for code in codes:
                if code in known:
                    continue
                entry = values.get(code)
                if entry is not None:
                    known[code] = entry[0]
                    touch(code)
                    hit += 1
                    if entry[1] < stale_below:
                        suspects[code] = entry[1]
                else:
                    known[code] = _MISSING
                    missing.append(code)
            self.hits += hit
            self.misses += len(missing)
        return suspects

    def _recheck(
        self,
        suspects: dict[str, int],
        size: int,
        updated: Callable[[list[str]], dict[str, int]] | None,
    ) -> list[str]:
        """Check cached codes against the store at tree size ``size``; drop and return the
        ones another writer changed since their value was known valid."""
        rows = updated(list(suspects)) if updated is not None else None
        stale: list[str] = []
        with self._lock:
            values = self._values
            for code, valid_at in suspects.items():
                entry = values.get(code)
                if entry is None:
                    continue
                if rows is None:
                    changed = True
                else:
                    # Every item write sets updated_index to its entry's index, and entries
                    # appended after size ``valid_at`` have indices >= valid_at. A code the
                    # cache knows as absent has no row unless someone created it since.
                    idx = rows.get(code)
                    if entry[0] is None:
                        changed = idx is not None
                    else:
                        changed = idx is None or idx >= valid_at
                if changed:
                    del values[code]
                    stale.append(code)
                else:
                    values[code] = (entry[0], size)
            self.rechecked += len(suspects)
            self.stale += len(stale)
            self.hits -= len(stale)
            self.misses += len(stale)
        return stale

    def _commit(
        self,
        before: _Head,
        after: _Head,
        loaded: dict[str, Any],
        written: Sequence[PendingEntry],
    ) -> None:
        """Write-through after a commit that moved the log from ``before`` to ``after``.

        Skipped when the cache is no longer at ``before`` (another transaction started since
        and will have dropped or reloaded it): it then stays at a head that is not current,
        and the next transaction drops it.
        """
        with self._lock:
            if self._head != before:
                return
            self._head = after
            if not self._max:
                return
            values = self._values
            # Read at ``before``: any later change by another writer has an index >= its size.
            known_at = before[0]
            for code, value in loaded.items():
                values[code] = (value, known_at)
            written_at = after[0]
            for entry in written:
                for it in entry.items:
                    if it.state is None:
                        values.pop(it.code, None)
                    else:
                        values[it.code] = (it.state, written_at)
                        values.move_to_end(it.code)
            excess = len(values) - self._max
            for _ in range(excess):
                values.popitem(last=False)


#: Placeholder in :meth:`StateView.get`'s working dict for codes the cache does not know.
_MISSING = object()


class StateView:
    """The writer's :class:`StateCache` as one transaction sees it.

    Reads come from the cache and from what this transaction recorded; what the transaction
    reads from the database is :meth:`record`-ed and reaches the cache only if it commits.
    Obtained from :meth:`Sequencer.integrate_with_states`; valid inside that call only.
    """

    __slots__ = ("_cache", "_head", "_loaded", "_updated")

    def __init__(
        self,
        cache: StateCache,
        head: _Head,
        updated: Callable[[list[str]], dict[str, int]] | None = None,
    ) -> None:
        self._cache = cache
        self._head = head
        self._loaded: dict[str, Any] = {}
        self._updated = updated

    def get(self, codes: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
        """What is known of ``codes``.

        Args:
            codes: Item codes (duplicates allowed).

        Returns:
            ``(known, missing)``: ``known`` maps each code with a known value to it (None: the
            code has no item); ``missing`` lists the others once each, in order, for the
            caller to read from the database (and :meth:`record`).
        """
        known: dict[str, Any] = {}
        missing: list[str] = []
        loaded = self._loaded
        if loaded:
            rest = []
            for code in codes:
                if code in loaded:
                    known[code] = loaded[code]
                else:
                    rest.append(code)
            codes = rest
        suspects = self._cache._lookup(codes, known, missing)
        if suspects:
            for code in self._cache._recheck(suspects, self._head[0], self._updated):
                known[code] = _MISSING
                missing.append(code)
        if missing:
            for code in missing:
                del known[code]
        return known, missing

    def record(self, code: str, value: Any) -> None:
        """Note the value of ``code`` read from the database in this transaction.

        Args:
            code: The item code.
            value: Its parsed state, or None when no item has that code.
        """
        self._loaded[code] = value


class _OverlayReader:
    """Serves ``get_hashes`` from hashes already in hand (the prefetched border plus the batch's
    new nodes), so the writer's Merkle work costs one SELECT however many calls it makes.
    Misses go to the database — that never happens for a consistent store."""

    __slots__ = ("_conn", "known")

    def __init__(self, conn: Connection, known: dict[tuple[int, int], bytes]) -> None:
        self._conn = conn
        self.known = known

    def get_hashes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        missing = [c for c in coords if c not in self.known]
        if missing:
            self.known.update(
                zip(missing, DbHashReader(self._conn).get_hashes(missing), strict=True)
            )
        return [self.known[c] for c in coords]


def _border(size: int) -> list[tuple[int, int]]:
    """The complete subtrees whose right fold is the root at ``size`` (one per set bit)."""
    coords: list[tuple[int, int]] = []
    lo = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            coords.append((level, lo >> level))
            lo += 1 << level
    return coords


class Sequencer:
    """The one writer of the log.

    Args:
        engine: An engine from :func:`api.store.db.make_engine` (schema migrated).
        origin: The log's origin (first line of every checkpoint; the signer's key name).
        signer: The log's signed-note signer.
        clock: Returns "now" (UTC) for the ``created`` columns; injected so tests and replays
            are deterministic.
        state_cache: The item-state cache of this writer (:class:`StateCache`); a default one
            when omitted.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        origin: str,
        signer: Signer,
        clock: Callable[[], datetime] = _utcnow,
        state_cache: StateCache | None = None,
    ) -> None:
        self._engine = engine
        self._origin = origin
        self._signer = signer
        self._clock = clock
        self._states = StateCache() if state_cache is None else state_cache

    @property
    def origin(self) -> str:
        """The log origin this sequencer signs for."""
        return self._origin

    @property
    def state_cache(self) -> StateCache:
        """This writer's item-state cache (see :meth:`integrate_with_states`)."""
        return self._states

    def integrate(self, batch: Sequence[PendingEntry]) -> IntegrationResult:
        """Append ``batch`` to the log and sign a checkpoint, in one transaction.

        An empty batch signs nothing when a checkpoint exists (its result describes the
        latest one); on an empty log it signs the size-0 checkpoint.

        Args:
            batch: Entries in the order they get indices.

        Returns:
            Where the batch landed and the checkpoint that covers it.

        Raises:
            ConflictError: The stored tree does not extend the latest checkpoint (a fork or a
                damaged store), another writer won the race for the same size, or a unique
                constraint refused a row (event logged twice, producer seq reused).
            ValueError: The batch is malformed (e.g. a capture's entries are not consecutive).
        """
        _check_batch(batch)
        # Hash outside the lock: the critical section should be only database work.
        leaf_hashes = [merkle.leaf_hash(e.leaf) for e in batch]
        now = self._clock()
        try:
            with write_transaction(self._engine) as conn:
                head = self._lock_and_read_head(conn)
                result = self._integrate(conn, batch, leaf_hashes, now, head)
        except sa_exc.IntegrityError as exc:
            # The PRIMARY KEY on checkpoints.size / entries.idx, UNIQUE(producer, seq) and the
            # event_id index are the backstops: whichever fired, this batch lost and wrote
            # nothing (the transaction rolled back).
            raise ConflictError(f"log write refused by a database constraint: {exc.orig}") from exc
        # Committed: keep the cache in step with the items this batch wrote.
        self._write_through(_head_of(head), result, {}, batch)
        return result

    def integrate_prepared(
        self, prepare: Callable[[Connection], tuple[Sequence[PendingEntry], _T]]
    ) -> tuple[IntegrationResult | None, _T]:
        """Prepare a batch inside the writer's transaction, then integrate it there.

        For use cases whose entries depend on what the log already holds (item states, a
        producer's chain head, registered keys): ``prepare`` runs after the writer lock is
        taken, reads through the connection it is given, and returns the batch plus any value
        the caller wants back. Reads and the append are then one serialised transaction, so two
        API processes can never both derive new states from the same old ones. If ``prepare``
        raises, or returns an empty batch, nothing is written (no checkpoint either).

        Args:
            prepare: ``conn -> (batch, extra)``; must not commit or write.

        Returns:
            ``(result, extra)``; ``result`` is None when the batch was empty.

        Raises:
            ConflictError: As :meth:`integrate`.
            ValueError: The batch is malformed.
        """
        return self.integrate_with_states(lambda conn, _states: prepare(conn))

    def integrate_with_states(
        self, prepare: Callable[[Connection, StateView], tuple[Sequence[PendingEntry], _T]]
    ) -> tuple[IntegrationResult | None, _T]:
        """:meth:`integrate_prepared`, with this writer's item-state cache handed to ``prepare``.

        ``prepare`` gets a :class:`StateView` that is valid for the log as the transaction
        sees it: look item states up there first, read only the missing ones from the database
        and :meth:`StateView.record` them. After the commit the cache holds what was recorded
        and the ``state`` of every :class:`ItemUpdate` of the batch; if anything fails it is
        left as it was.

        Args:
            prepare: ``(conn, states) -> (batch, extra)``; must not commit or write.

        Returns:
            ``(result, extra)``; ``result`` is None when the batch was empty.

        Raises:
            ConflictError: As :meth:`integrate`.
            ValueError: The batch is malformed.
        """
        now = self._clock()
        try:
            with write_transaction(self._engine) as conn:
                head = self._lock_and_read_head(conn)
                view = self._states._open(
                    _head_of(head),
                    extends=lambda old: _checkpoint_root(conn, old[0]) == old[1],
                    updated=lambda codes: _updated_indices(conn, codes),
                )
                batch, extra = prepare(conn, view)
                if not batch:
                    return None, extra
                _check_batch(batch)
                leaf_hashes = [merkle.leaf_hash(e.leaf) for e in batch]
                result = self._integrate(conn, batch, leaf_hashes, now, head)
        except sa_exc.IntegrityError as exc:
            raise ConflictError(f"log write refused by a database constraint: {exc.orig}") from exc
        # Only now that the batch is durable may its states serve the next one.
        self._write_through(view._head, result, view._loaded, batch)
        return result, extra

    def _write_through(
        self,
        before: _Head,
        result: IntegrationResult,
        loaded: dict[str, Any],
        batch: Sequence[PendingEntry],
    ) -> None:
        try:
            self._states._commit(before, (result.size, result.root), loaded, batch)
        except Exception:
            # The batch is committed: a cache failure must not turn it into an error. A cleared
            # cache is always correct (the next transaction reads the store).
            self._states.clear()

    def _lock_and_read_head(self, conn: Connection) -> tuple[CheckpointRow | None, int]:
        """Take the writer lock, then read the latest checkpoint and the tree size."""
        if is_postgres(conn):
            # Must be the first statement: under READ COMMITTED every later statement then sees
            # the previous writer's commit.
            conn.execute(
                text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY_SQL})"), {"ns": _INTEGRATE_LOCK_NS}
            )
        elif not conn.info.get(_SQLITE_TUNED):
            # A 1,000-event batch dirties several MB of pages; with SQLite's default 2 MB page
            # cache they spill to the WAL mid-transaction and are written twice. Per connection,
            # once (conn.info lives as long as the pooled DBAPI connection).
            conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
            conn.info[_SQLITE_TUNED] = True
        return latest_checkpoint(conn, for_update=True), tree_size(conn)

    # The body of the transaction, after _lock_and_read_head.
    def _integrate(
        self,
        conn: Connection,
        batch: Sequence[PendingEntry],
        leaf_hashes: list[bytes],
        now: datetime,
        head: tuple[CheckpointRow | None, int],
    ) -> IntegrationResult:
        last, size = head

        # Checkpoint CAS, step 1: the stored tree must be at least as large as the last head.
        if last is None:
            if size != 0:
                raise ConflictError(
                    "entries exist but no checkpoint was ever signed", expected=0, actual=size
                )
        elif size < last.size:
            raise ConflictError(
                "stored tree is smaller than the latest checkpoint",
                expected=last.size,
                actual=size,
            )
        if not batch and last is not None:
            return IntegrationResult(last.size, last.size, last.root, last.note)

        # One SELECT for every stored hash the writer needs: the right border at the current
        # size (what new_hashes pairs new nodes with) and at the last checkpoint's size.
        coords = list(dict.fromkeys(_border(size) + (_border(last.size) if last else [])))
        reader = _OverlayReader(conn, {})
        try:
            if coords:
                reader.get_hashes(coords)
            # Checkpoint CAS, step 2: the root at the last size, recomputed from stored hashes,
            # must be the one we signed — so the new head provably extends it.
            if last is not None:
                recomputed = merkle.root(last.size, reader)
                if recomputed != last.root:
                    raise ConflictError(
                        f"stored hashes do not reproduce the checkpoint at size {last.size}",
                        expected=last.root.hex(),
                        actual=recomputed.hex(),
                    )
            nodes = merkle.new_hashes(size, leaf_hashes, reader)
        except NotFoundError as exc:
            raise ConflictError(f"stored Merkle hashes are incomplete: {exc}") from exc
        reader.known.update(((lvl, idx), h) for lvl, idx, h in nodes)
        new_size = size + len(batch)
        new_root = merkle.root(new_size, reader)

        if batch:
            self._write_rows(conn, batch, leaf_hashes, size, new_size, now)
        # Level 0 is entries.leaf_hash (written with the entries); only interior nodes here.
        inner = [node for node in nodes if node[0] > 0]
        if inner:
            _bulk_write(conn, _MERKLE, inner)

        body = Checkpoint(self._origin, new_size, new_root).body()
        note = sign_note(body, [self._signer]).serialize()
        # Checkpoint CAS, step 3: size is the primary key; a concurrent writer that somehow
        # got here with the same size fails on it (IntegrityError -> ConflictError).
        conn.execute(
            insert(t.checkpoints),
            {"size": new_size, "root": new_root, "note": note.decode("utf-8"), "created": now},
        )
        return IntegrationResult(size, new_size, new_root, note)

    def _write_rows(
        self,
        conn: Connection,
        batch: Sequence[PendingEntry],
        leaf_hashes: list[bytes],
        first: int,
        new_size: int,
        now: datetime,
    ) -> None:
        # The hot tables (entries, item_events, items) get positional rows written through the
        # driver (see _bulk_write): a 1,000-event batch is ~5,000 rows, and SQLAlchemy Core's
        # per-row parameter processing used to cost more than the database did.
        entry_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[str, int]] = []
        alert_rows: list[dict[str, Any]] = []
        capture_rows: list[dict[str, Any]] = []
        # Keyed so that the last update in log order wins (and each key appears once per
        # statement: PostgreSQL refuses to upsert the same row twice in one INSERT).
        item_rows: dict[str, tuple[Any, ...]] = {}
        heads: dict[str, dict[str, Any]] = {}
        orgs: dict[str, dict[str, Any]] = {}
        products: dict[str, dict[str, Any]] = {}
        keys: list[dict[str, Any]] = []
        revocations: list[tuple[int, KeyRevocation]] = []

        append_entry = entry_rows.append
        append_event = event_rows.append
        expiry_bind = _row_processor(t.items.c.expiry, conn.dialect)
        expiries: dict[date, Any] = {}
        for idx, entry, lh in zip(range(first, new_size), batch, leaf_hashes, strict=True):
            append_entry(
                (idx, entry.leaf, lh, entry.kind, entry.event_id, entry.capture_id, entry.producer)
            )
            codes = entry.codes
            if codes:
                if len(codes) == 1:
                    append_event((codes[0], idx))
                else:
                    for code in dict.fromkeys(codes):
                        append_event((code, idx))
            for a in entry.alerts:
                alert_rows.append(
                    {
                        "log_index": idx,
                        "kind": a.kind,
                        "rule": a.rule,
                        "org": a.org,
                        "codes": list(a.codes),
                        "message": a.message,
                        "created": now,
                    }
                )
            for it in entry.items:
                expiry = it.expiry
                if expiry is not None and expiry_bind is not None:
                    # Few distinct dates: bind each once (SQLite stores them as text).
                    bound = expiries.get(expiry)
                    if bound is None:
                        bound = expiries[expiry] = expiry_bind(expiry)
                    expiry = bound
                item_rows[it.code] = (
                    it.code,
                    it.product_gtin,
                    it.lot,
                    expiry,
                    it.status,
                    it.custodian,
                    it.location,
                    it.parent,
                    it.in_transit_to,
                    it.recalled,
                    it.quarantined,
                    it.dispense_count,
                    it.state_json,
                    idx,
                )
            cap = entry.capture
            if cap is not None:
                receipt = {
                    "capture_id": cap.capture_id,
                    "checkpoint_size": new_size,
                    "count": cap.count,
                    "first_index": idx,
                    "producer": cap.producer,
                    "seq": cap.seq,
                }
                capture_rows.append(
                    {
                        "capture_id": cap.capture_id,
                        "producer": cap.producer,
                        "seq": cap.seq,
                        "payload": cap.payload,
                        "signature": cap.signature,
                        "first_index": idx,
                        "count": cap.count,
                        "checkpoint_size": new_size,
                        "receipt_json": canonical_json(receipt).decode("utf-8"),
                        "created": now,
                    }
                )
                prior = heads.get(cap.producer)
                if prior is None or cap.seq > prior["seq"]:
                    heads[cap.producer] = {
                        "producer": cap.producer,
                        "seq": cap.seq,
                        "capture_id": cap.capture_id,
                        "updated_index": idx,
                    }
            if entry.org is not None:
                o = entry.org
                orgs[o.id] = {
                    "id": o.id,
                    "name": o.name,
                    "role": o.role,
                    "gln": o.gln,
                    "company_prefixes": list(o.company_prefixes),
                    "registered_index": idx,
                    "data_json": o.data_json,
                }
            if entry.key is not None:
                k = entry.key
                keys.append(
                    {
                        "org": k.org,
                        "key_id": k.key_id,
                        "name": k.name,
                        "public_key": k.public_key,
                        "valid_from_index": idx,
                        "revoked_at_index": None,
                    }
                )
            if entry.revoke is not None:
                revocations.append((idx, entry.revoke))
            if entry.product is not None:
                p = entry.product
                products[p.gtin] = {
                    "gtin": p.gtin,
                    "owner": p.owner,
                    "name": p.name,
                    "kind": p.kind,
                    "nmpa_drug_id": p.nmpa_drug_id,
                    "data_json": p.data_json,
                    "registered_index": idx,
                }

        # Parents before children (foreign keys are enforced on both engines).
        _bulk_write(conn, _ENTRIES, entry_rows, const=(now,))
        if event_rows:
            _bulk_write(conn, _ITEM_EVENTS, event_rows)
        if alert_rows:
            conn.execute(insert(t.alerts), alert_rows)
        if orgs:
            conn.execute(_upsert(conn, t.orgs, ["id"]), list(orgs.values()))
        if keys:
            conn.execute(insert(t.org_keys), keys)
        for idx, rev in revocations:
            kc = t.org_keys.c
            conn.execute(
                update(t.org_keys)
                .where(kc.org == rev.org, kc.key_id == rev.key_id, kc.revoked_at_index.is_(None))
                .values(revoked_at_index=idx)
            )
        if products:
            conn.execute(_upsert(conn, t.products, ["gtin"]), list(products.values()))
        if capture_rows:
            conn.execute(insert(t.captures), capture_rows)
        if heads:
            conn.execute(
                _upsert(conn, t.producer_heads, ["producer"], newer="seq"), list(heads.values())
            )
        if item_rows:
            _bulk_write(conn, _ITEMS, list(item_rows.values()), bound=True)


# -- bulk writes through the driver ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _BulkTable:
    """A hot table written positionally: ``cols`` per row, then ``const`` (same every row)."""

    table: Any
    cols: tuple[str, ...]
    const: tuple[str, ...] = ()
    upsert_key: tuple[str, ...] = ()


_ENTRIES = _BulkTable(
    t.entries,
    ("idx", "leaf", "leaf_hash", "kind", "event_id", "capture_id", "producer"),
    const=("created",),
)
_ITEM_EVENTS = _BulkTable(t.item_events, ("code", "log_index"))
_MERKLE = _BulkTable(t.merkle_nodes, ("level", "idx", "hash"))
_ITEMS = _BulkTable(
    t.items,
    (
        "code",
        "product_gtin",
        "lot",
        "expiry",
        "status",
        "custodian",
        "location",
        "parent",
        "in_transit_to",
        "recalled",
        "quarantined",
        "dispense_count",
        "state_json",
        "updated_index",
    ),
    upsert_key=("code",),
)

_SQL_CACHE: dict[tuple[str, str], str] = {}


def _bulk_sql(conn: Connection, spec: _BulkTable) -> str:
    """SQLite: the (upsert) statement for ``executemany``. PostgreSQL: the ``COPY`` statement,
    into the table itself or, for an upsert, into its staging table. Built once per dialect."""
    dialect = conn.dialect
    key = (dialect.name, spec.table.name)
    sql = _SQL_CACHE.get(key)
    if sql is not None:
        return sql
    names = (*spec.cols, *spec.const)
    quote = dialect.identifier_preparer.quote
    cols = ", ".join(quote(c) for c in names)
    if dialect.name == "postgresql":
        target = _stage_name(spec) if spec.upsert_key else quote(spec.table.name)
        sql = f"COPY {target} ({cols}) FROM STDIN"
    else:
        marks = ", ".join("?" for _ in names)
        sql = f"INSERT INTO {quote(spec.table.name)} ({cols}) VALUES ({marks})"
        if spec.upsert_key:
            sql += _on_conflict(conn, spec)
    _SQL_CACHE[key] = sql
    return sql


def _on_conflict(conn: Connection, spec: _BulkTable) -> str:
    quote = conn.dialect.identifier_preparer.quote
    keys = ", ".join(quote(c) for c in spec.upsert_key)
    sets = ", ".join(
        f"{quote(c)} = excluded.{quote(c)}"
        for c in (*spec.cols, *spec.const)
        if c not in spec.upsert_key
    )
    return f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def _stage_name(spec: _BulkTable) -> str:
    return f"yima_stage_{spec.table.name}"


def _bulk_write(
    conn: Connection,
    spec: _BulkTable,
    rows: Sequence[tuple[Any, ...]],
    *,
    const: tuple[Any, ...] = (),
    bound: bool = False,
) -> None:
    """Insert (or upsert) positional ``rows`` into a hot table, bypassing Core's per-row work.

    SQLite: one ``executemany`` of tuples through ``exec_driver_sql``. PostgreSQL: ``COPY``
    (psycopg formats the rows in C); an upsert copies into a session-private staging table
    (``ON COMMIT DELETE ROWS``) and moves the rows with one ``INSERT ... SELECT ... ON
    CONFLICT``. Values reach the driver as they are, so each column's SQLAlchemy bind
    processing is applied here where one changes the stored value: once for the constant
    columns, per row otherwise (SQLite stores dates and times as text in SQLAlchemy's format;
    ints, str, bytes and bools bind natively) unless the caller did it already (``bound``).
    A constraint violation is an :class:`sqlalchemy.exc.IntegrityError` on both paths, as with
    Core.
    """
    dialect = conn.dialect
    table = spec.table
    const = tuple(_process(table.c[c], dialect, v) for c, v in zip(spec.const, const, strict=True))
    per_row = [
        (i, proc)
        for i, c in enumerate(spec.cols)
        if not bound and (proc := _row_processor(table.c[c], dialect)) is not None
    ]
    if per_row:
        converted = []
        for row in rows:
            values = list(row)
            for i, proc in per_row:
                v = values[i]
                if v is not None:
                    values[i] = proc(v)
            converted.append(tuple(values))
        rows = converted
    sql = _bulk_sql(conn, spec)
    if dialect.name != "postgresql":
        conn.exec_driver_sql(sql, [(*row, *const) for row in rows] if const else list(rows))
        return
    if spec.upsert_key:
        quote = dialect.identifier_preparer.quote
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_stage_name(spec)} "
            f"(LIKE {quote(table.name)}) ON COMMIT DELETE ROWS"
        )
    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            write = copy.write_row
            if const:
                for row in rows:
                    write((*row, *const))
            else:
                for row in rows:
                    write(row)
    except dialect.dbapi.IntegrityError as exc:  # type: ignore[union-attr]
        raise sa_exc.IntegrityError(sql, None, exc) from exc
    if spec.upsert_key:
        names = ", ".join(quote(c) for c in (*spec.cols, *spec.const))
        conn.exec_driver_sql(
            f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {_stage_name(spec)}"
            + _on_conflict(conn, spec)
        )


def _row_processor(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    # Only processors that change what is stored matter; Boolean's (bool -> int on SQLite)
    # binds identically, LargeBinary has none.
    if isinstance(column.type, Boolean):
        return None
    proc: Callable[[Any], Any] | None = column.type._cached_bind_processor(dialect)
    return proc


def _process(column: Any, dialect: Any, value: Any) -> Any:
    proc = column.type._cached_bind_processor(dialect)
    return value if proc is None or value is None else proc(value)


def _upsert(conn: Connection, table: Any, keys: list[str], *, newer: str | None = None) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` every other column (PostgreSQL or SQLite).

    With ``newer``, an existing row is only replaced by one with a larger value in that column
    (a producer head never moves backwards).
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    excluded = stmt.excluded
    set_ = {c.name: excluded[c.name] for c in table.columns if c.name not in keys}
    where = table.c[newer] < excluded[newer] if newer else None
    upsert: Insert = stmt.on_conflict_do_update(index_elements=keys, set_=set_, where=where)
    return upsert


def _check_batch(batch: Sequence[PendingEntry]) -> None:
    """Refuse batches the service layer got wrong, before anything is locked."""
    for i, entry in enumerate(batch):
        if not entry.leaf:
            raise ValueError(f"batch[{i}]: empty leaf")
        if entry.kind == "event" and not entry.event_id:
            raise ValueError(f"batch[{i}]: an event entry needs its event_id")
        cap = entry.capture
        if cap is None:
            continue
        if cap.count < 1 or i + cap.count > len(batch):
            raise ValueError(
                f"batch[{i}]: capture {cap.capture_id} claims {cap.count} entries; "
                f"only {len(batch) - i} follow"
            )
        for j in range(i, i + cap.count):
            if batch[j].capture_id != cap.capture_id:
                raise ValueError(
                    f"batch[{j}]: expected an entry of capture {cap.capture_id}, "
                    f"got capture {batch[j].capture_id}"
                )


class SequencerLock:
    """Leader election for the log's long-running background work, across processes.

    Correctness never depends on it — :meth:`Sequencer.integrate` serialises every batch on
    its own transaction-scoped lock. It exists so that exactly one process per log runs the
    background workers (witnessing, anchoring; :meth:`api.container.Container.start_background`):
    others wait (:meth:`acquire`) or give up (:meth:`try_acquire`). On PostgreSQL it is a
    session advisory lock on a dedicated connection; on a SQLite file an exclusive ``flock`` on
    ``<database>.leader`` next to it. Either way the operating system or the server frees it
    when its holder exits or crashes. An in-memory SQLite database lives in one process: the lock
    is always granted there.

    Args:
        engine: The log's engine.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._file: Any = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._conn is not None or self._file is not None

    def _lock_path(self) -> str | None:
        database = sqlite_file(self._engine)
        return None if database is None else database + ".leader"

    def _take_file(self, path: str, *, wait: bool) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: one process per log, as before
            self._conn = self._engine.connect()
            return True
        f = open(path, "a+b")  # noqa: SIM115 - held open for as long as the lock is held
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.close()
            return False
        except BaseException:
            f.close()
            raise
        self._file = f
        return True

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return whether it is now held."""
        if self.held:
            return True
        if not is_postgres(self._engine):
            path = self._lock_path()
            if path is None:
                self._conn = self._engine.connect()
                return True
            return self._take_file(path, wait=False)
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = conn.execute(
            text(f"SELECT pg_try_advisory_lock({_LOCK_KEY_SQL})"), {"ns": _LEADER_LOCK_NS}
        ).scalar_one()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def acquire(self) -> None:
        """Wait until the lock is free, then take it."""
        if self.held:
            return
        if not is_postgres(self._engine):
            path = self._lock_path()
            if path is None:
                self._conn = self._engine.connect()
            else:
                self._take_file(path, wait=True)
            return
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f"SELECT pg_advisory_lock({_LOCK_KEY_SQL})"), {"ns": _LEADER_LOCK_NS})
        self._conn = conn

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        f, self._file = self._file, None
        if f is not None:
            f.close()  # closing the descriptor drops its flock
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if is_postgres(self._engine):
                conn.execute(
                    text(f"SELECT pg_advisory_unlock({_LOCK_KEY_SQL})"), {"ns": _LEADER_LOCK_NS}
                )
        finally:
            conn.close()

    def __enter__(self) -> SequencerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
