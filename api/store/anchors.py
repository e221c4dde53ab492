"""The ``anchors`` table: a durable :class:`contracts.anchor.PendingAnchorQueue` and reads.

Nothing is lost (docs/spec/09-anchoring.md §9.4): a row is written ``pending`` before anything
is sent, the signed transaction's hash is written before it leaves, and the row becomes
``confirmed`` only when the chain shows the entry. Every method commits before it returns.

Rows are per ``(chain_id, contract, origin, size)``: the same checkpoint queued twice for one
registry is one row, so a re-run after a timeout finds the row (and its ``tx_hash``) instead
of sending a second transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, update
from sqlalchemy import exc as sa_exc

from api.store import tables as t
from ledger.note import Checkpoint

if TYPE_CHECKING:
    # contracts.anchor imports web3 (over a second): readers of the table (the audit, the
    # log endpoints) must not pay for it; the two constructors below import it when used.
    from contracts.anchor import Anchor, AnchorClient, PendingAnchor

__all__ = ["CONFIRMED", "DROPPED", "PENDING", "AnchorRow", "DbPendingQueue", "list_anchors"]

PENDING = "pending"
CONFIRMED = "confirmed"
DROPPED = "dropped"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AnchorRow:
    """One row of the ``anchors`` table.

    Attributes:
        id: Row id.
        chain_id: EIP-155 chain id.
        contract: Registry contract address.
        origin: Log origin.
        size: Tree size.
        root: Root hash.
        simulated: True on the in-process chain (proves nothing to outsiders).
        status: ``pending``, ``confirmed`` or ``dropped``.
        tx_hash: The transaction signed for it (known before sending).
        block: Block number (confirmed rows).
        chain_index: Position in the origin's on-chain list (confirmed rows).
        chain_time: Block timestamp (confirmed rows).
        gas_used: Gas the transaction used (confirmed rows).
        attempts: Failed attempts.
        last_error: The last failure (or the reason it was dropped).
        created: When it was queued.
        confirmed_at: When the chain was seen to hold it.
    """

    id: int
    chain_id: int
    contract: str
    origin: str
    size: int
    root: bytes
    simulated: bool
    status: str
    tx_hash: str | None
    block: int | None
    chain_index: int | None
    chain_time: int | None
    gas_used: int | None
    attempts: int
    last_error: str | None
    created: datetime
    confirmed_at: datetime | None

    def anchor(self) -> Anchor:
        """The :class:`contracts.anchor.Anchor` of a confirmed row.

        Raises:
            ValueError: The row is not confirmed.
        """
        if self.status != CONFIRMED or self.tx_hash is None or self.block is None:
            raise ValueError(f"anchor row {self.id} is {self.status}, not confirmed")
        from contracts.anchor import Anchor

        return Anchor(
            chain_id=self.chain_id,
            contract=self.contract,
            tx_hash=self.tx_hash,
            block_number=self.block,
            origin=self.origin,
            size=self.size,
            root=self.root,
            simulated=self.simulated,
            index=self.chain_index or 0,
            time=self.chain_time or 0,
            gas_used=self.gas_used or 0,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``Anchor.to_dict()`` fields plus ``status`` and timestamps."""
        label = "SIMULATED" if self.simulated else f"chain {self.chain_id}"
        out: dict[str, Any] = (
            self.anchor().to_dict()
            if self.status == CONFIRMED
            else {
                "chain": label,
                "simulated": self.simulated,
                "chain_id": self.chain_id,
                "contract": self.contract,
                "tx_hash": self.tx_hash,
                "block_number": None,
                "origin": self.origin,
                "size": self.size,
                "root": self.root.hex(),
            }
        )
        out["status"] = self.status
        out["attempts"] = self.attempts
        out["last_error"] = self.last_error
        out["created"] = self.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        out["confirmed_at"] = (
            self.confirmed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.confirmed_at else None
        )
        return out


def _row(m: Any) -> AnchorRow:
    created = _utc(m["created"])
    assert created is not None
    return AnchorRow(
        id=m["id"],
        chain_id=m["chain_id"],
        contract=m["contract"],
        origin=m["origin"],
        size=m["size"],
        root=bytes(m["root"]),
        simulated=bool(m["simulated"]),
        status=m["status"],
        tx_hash=m["tx_hash"],
        block=m["block"],
        chain_index=m["chain_index"],
        chain_time=m["chain_time"],
        gas_used=m["gas_used"],
        attempts=m["attempts"],
        last_error=m["last_error"],
        created=created,
        confirmed_at=_utc(m["confirmed_at"]),
    )


def list_anchors(
    engine: Engine,
    *,
    status: str | None = CONFIRMED,
    origin: str | None = None,
    max_size: int | None = None,
    limit: int = 100,
    newest_first: bool = True,
) -> list[AnchorRow]:
    """Anchor rows, newest (largest size) first by default.

    Args:
        engine: The database.
        status: Only rows with this status (None: all).
        origin: Only this log origin.
        max_size: Only anchors of at most this size (e.g. covered by a checkpoint).
        limit: At most this many rows.
        newest_first: Order by size descending (else ascending).
    """
    a = t.anchors.c
    query = select(t.anchors)
    if status is not None:
        query = query.where(a.status == status)
    if origin is not None:
        query = query.where(a.origin == origin)
    if max_size is not None:
        query = query.where(a.size <= max_size)
    order = (a.size.desc(), a.id.desc()) if newest_first else (a.size, a.id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(*order).limit(limit))
        return [_row(r._mapping) for r in rows]


class DbPendingQueue:
    """A :class:`contracts.anchor.PendingAnchorQueue` on the ``anchors`` table.

    The queue is bound to one registry (chain id and contract address, read from the client
    when first needed), so pending rows of another chain are never sent to this one.

    Args:
        engine: The database (migrated).
        client: The anchor client whose chain and contract the rows belong to.
        clock: "Now" for ``created`` / ``confirmed_at``.
    """

    def __init__(
        self,
        engine: Engine,
        client: AnchorClient,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._client = client
        self._clock = clock
        self._chain: tuple[int, str] | None = None

    @property
    def chain(self) -> tuple[int, str]:
        """``(chain_id, contract address)`` of the registry (asks the client once)."""
        if self._chain is None:
            self._chain = (self._client.chain_id, str(self._client.contract_address))
        return self._chain

    def _pending(self, row: AnchorRow) -> PendingAnchor:
        from contracts.anchor import PendingAnchor

        return PendingAnchor(
            id=row.id,
            origin=row.origin,
            size=row.size,
            root=row.root,
            tx_hash=row.tx_hash,
            attempts=row.attempts,
            last_error=row.last_error,
        )

    def _find(self, origin: str, size: int) -> AnchorRow | None:
        a = t.anchors.c
        chain_id, contract = self.chain
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.anchors).where(
                    a.chain_id == chain_id,
                    a.contract == contract,
                    a.origin == origin,
                    a.size == size,
                )
            ).one_or_none()
        return None if row is None else _row(row._mapping)

    def add(self, checkpoint: Checkpoint) -> PendingAnchor:
        """Record a checkpoint to anchor, durably, before anything is sent (SPEC §9.4 step 1).

        Idempotent per origin and size: an existing row (pending or not) is returned as is.
        """
        existing = self._find(checkpoint.origin, checkpoint.size)
        if existing is not None:
            return self._pending(existing)
        chain_id, contract = self.chain
        values = {
            "chain_id": chain_id,
            "contract": contract,
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": checkpoint.root_hash,
            "simulated": self._client.is_simulated,
            "status": PENDING,
            "attempts": 0,
            "created": self._clock(),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(t.anchors.insert().values(values))
        except sa_exc.IntegrityError:
            pass  # a concurrent add won: the row exists, which is all that was asked
        found = self._find(checkpoint.origin, checkpoint.size)
        assert found is not None
        return self._pending(found)

    def pending(self) -> Sequence[PendingAnchor]:
        """Pending rows of this registry, oldest first."""
        a = t.anchors.c
        chain_id, contract = self.chain
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t.anchors)
                .where(a.chain_id == chain_id, a.contract == contract, a.status == PENDING)
                .order_by(a.id)
            )
            return [self._pending(_row(r._mapping)) for r in rows]

    def _update(self, pending_id: int, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(t.anchors).where(t.anchors.c.id == pending_id).values(**values))

    def mark_sent(self, pending_id: int, tx_hash: str) -> None:
        """Record the signed transaction's hash before it is sent (SPEC §9.4 step 2)."""
        self._update(pending_id, tx_hash=tx_hash)

    def mark_failed(self, pending_id: int, error: str) -> None:
        """Count a failed attempt; the row stays pending."""
        a = t.anchors.c
        self._update(pending_id, attempts=a.attempts + 1, last_error=error[:2000])

    def complete(self, pending_id: int, anchor: Anchor) -> None:
        """The chain holds it: store where, and mark the row confirmed."""
        self._update(
            pending_id,
            status=CONFIRMED,
            tx_hash=anchor.tx_hash,
            block=anchor.block_number,
            chain_index=anchor.index,
            chain_time=anchor.time,
            gas_used=anchor.gas_used,
            simulated=anchor.simulated,
            confirmed_at=self._clock(),
        )

    def drop(self, pending_id: int, reason: str) -> None:
        """A larger size of the origin is already anchored: keep the row, marked dropped."""
        self._update(pending_id, status=DROPPED, last_error=reason[:2000])
