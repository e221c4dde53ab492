"""Offline proof bundles for one item: ``GET /v1/items/{code}/bundle`` (SPEC §10.9, §10.16).

A bundle lets anyone with the log key, the witness policy and the regulator root keys check an
item's journey without the server (``yima verify-bundle``, ``ledger.bundle.verify_bundle``).
It holds:

1. the leaves of the item's history (own, inherited from parents while packed, its lot, the
   input lots of the transformations that made it), exactly as ``/history`` lists them;
2. the registry leaves they depend on: every org, key and key-revoke statement (the trust
   chain up to the regulator roots; the registry is public) and the product statements of
   every GTIN or NMPA drug id the events name;
3. an inclusion proof of each against ONE checkpoint: the newest that covers them all and
   carries the witness quorum, else the newest (with whatever cosignatures it has);
4. the newest confirmed anchor not larger than that checkpoint, with a consistency proof
   from the anchored size to it.

Access is the item-history rule (ADR 0007 addendum): event leaves carry business documents
(purchase-order numbers in bizTransactionList, partner sites), so anonymous callers get 401 and
parties without a part in the journey 403.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select, text

from api.auth import Caller
from api.container import Container
from api.errors import NotFound
from api.services import items
from api.services.anchoring import latest_anchor
from api.services.witnessing import cosigned_note
from api.store import tables as t
from ledger.bundle import build_bundle
from ledger.signing import b64decode, b64encode

__all__ = ["ItemBundle", "item_bundle"]

_GTIN = re.compile(r"/01/(\d{14})")
_NMPA = re.compile(r"urn:yima:nmpa:(\d{7})")
_REGISTRY_KINDS = ("org", "key", "key-revoke")


class ItemBundle:
    """A built bundle and what it was built against."""

    def __init__(self, code: str, data: bytes, size: int, anchored: int | None) -> None:
        self.code = code
        self.data = data
        self.size = size
        self.anchored = anchored


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _registry_entries(
    conn: Connection, size: int, gtins: set[str], drug_ids: set[str]
) -> list[tuple[int, bytes]]:
    e = t.entries.c
    # The predicate is repeated verbatim so that SQLite uses the partial index.
    rows = conn.execute(
        select(e.idx, e.kind, e.leaf)
        .where(text(t.REGISTRY_ENTRY_PREDICATE))
        .where(e.kind.in_((*_REGISTRY_KINDS, "product")), e.idx < size)
        .order_by(e.idx)
    )
    out: list[tuple[int, bytes]] = []
    for idx, kind, leaf in rows:
        leaf = bytes(leaf)
        if kind == "product":
            try:
                st = json.loads(b64decode(json.loads(leaf)["statement"]))
            except (ValueError, KeyError, TypeError):
                out.append((idx, leaf))  # malformed: include it, the verifier will say so
                continue
            if st.get("gtin") not in gtins and st.get("nmpa_drug_id") not in drug_ids:
                continue
        out.append((idx, leaf))
    return out


def _checkpoint_size(c: Container, conn: Connection, need: int) -> int:
    """The newest checkpoint of at least ``need`` with the witness quorum, else the newest."""
    k = c.settings.witness_quorum
    if c.settings.witnesses and k > 0:
        co = t.cosignatures.c
        size = conn.execute(
            select(co.size)
            .where(co.size >= need)
            .group_by(co.size)
            .having(func.count() >= k)
            .order_by(co.size.desc())
            .limit(1)
        ).scalar_one_or_none()
        if size is not None:
            return int(size)
    latest = c.store.latest_checkpoint()
    if latest is None or latest.size < need:
        raise NotFound("no signed checkpoint covers this item's entries yet")
    return latest.size


def item_bundle(c: Container, caller: Caller, code_text: str) -> ItemBundle:
    """Build the ``yima.bundle/v1`` of an item, for a party with a part in its journey.

    Raises:
        CodeError: Unreadable code. NotFound: unknown item or nothing signed yet.
        PermissionDenied: The caller has no part in the item's journey.
    """
    view, history = items.get_history(c, caller, code_text)
    indices = {h.index for h in history}
    gtins: set[str] = set()
    drug_ids: set[str] = set()
    if view.state.product_gtin:
        gtins.add(view.state.product_gtin)
    for h in history:
        for s in _strings(h.event):
            gtins.update(_GTIN.findall(s))
            drug_ids.update(_NMPA.findall(s))
    with c.engine.connect() as conn:
        size = _checkpoint_size(c, conn, max(indices, default=-1) + 1)
        registry = _registry_entries(conn, size, gtins, drug_ids)
        e = t.entries.c
        leaves = {
            int(r[0]): bytes(r[1])
            for r in conn.execute(select(e.idx, e.leaf).where(e.idx.in_(sorted(indices))))
        }
    leaves.update(registry)
    checkpoint = c.store.checkpoint_at(size)
    assert checkpoint is not None
    note = cosigned_note(c.store, size, checkpoint.note)
    entries = [(i, leaf, c.store.inclusion_proof(i, size)) for i, leaf in sorted(leaves.items())]
    anchor: dict[str, Any] | None = None
    row = latest_anchor(c, max_size=size)
    if row is not None:
        anchor = row.anchor().to_dict()
        proof = c.store.consistency_proof(row.size, size) if row.size < size else []
        anchor["consistency"] = [b64encode(h) for h in proof]
    data = build_bundle(view.code, note, entries, anchor)
    return ItemBundle(view.code, data, size, row.size if row is not None else None)
