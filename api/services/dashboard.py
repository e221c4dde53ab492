"""Reads behind the dashboard pages (``api.web.dashboard``): registry, lots, event ids, network.

The dashboard router stays thin: every database read it needs is here, returned as plain
values (the :class:`~api.services.common.Registry`, dataclasses, dicts), never ORM rows.
Access-controlled item reads (a lot's packs, an item's history, an org's stock) are in
:mod:`api.services.items`; :func:`lot_summaries` applies the same visibility as
:func:`api.services.items.lot_packs`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, or_, select

from api.auth import Caller, caller_for_token_hash
from api.container import Container
from api.errors import ServiceError
from api.services import items as item_service
from api.services.common import Registry, load_registry
from api.store import tables as t
from ledger.errors import LedgerError

__all__ = [
    "CustodyFlow",
    "LotSummary",
    "caller_for_session",
    "custody_flow",
    "event_ids_at",
    "lot_summaries",
    "product_name",
    "registry_view",
]


def caller_for_session(c: Container, token_hash: bytes) -> Caller | None:
    """The caller whose API token hashes to ``token_hash`` (a signed-in session), if any."""
    return caller_for_token_hash(c.engine, token_hash)


def _checkpoint_size(conn: Connection) -> int:
    cp = t.checkpoints.c
    size = conn.execute(select(func.max(cp.size))).scalar_one_or_none()
    return int(size) if size is not None else 0


def registry_view(c: Container) -> Registry:
    """Every organisation and site, cached in ``c.registry_cache`` while the log does not grow.

    Registry projections are written in the same transaction as the checkpoint covering
    them, so the value read at the latest checkpoint size stays valid until a larger one.
    """
    with c.engine.connect() as conn:
        size = _checkpoint_size(conn)
        return c.registry_cache.get(size, "registry", lambda: load_registry(conn))


def product_name(c: Container, gtin: str) -> str | None:
    """The registered name of product ``gtin`` (GTIN-14), or None if it is not registered."""
    p = t.products.c
    with c.engine.connect() as conn:
        name = conn.execute(select(p.name).where(p.gtin == gtin)).scalar_one_or_none()
    return None if name is None else str(name)


def event_ids_at(c: Container, indexes: Sequence[int]) -> dict[int, str]:
    """The EPCIS event id logged at each of ``indexes`` (entries without one are left out)."""
    if not indexes:
        return {}
    e = t.entries.c
    with c.engine.connect() as conn:
        rows = conn.execute(select(e.idx, e.event_id).where(e.idx.in_(sorted(set(indexes))))).all()
    return {int(r[0]): str(r[1]) for r in rows if r[1]}


@dataclass(frozen=True, slots=True)
class LotSummary:
    """One lot in the overview list: product, lot, number of item rows the caller may see."""

    gtin: str
    lot: str
    count: int
    name: str | None


def lot_summaries(c: Container, caller: Caller, limit: int = 50) -> list[LotSummary]:
    """Lots with their item counts and product names, by GTIN then lot.

    Visibility follows :func:`api.services.items.lot_packs`: a regulator sees every lot and
    every item row; the owner of a product sees every lot of it in full; any other
    organisation sees only lots where it holds (or is about to receive) a pack, counting
    those packs only.
    """
    i, p = t.items.c, t.products.c
    q = (
        select(i.product_gtin, i.lot, func.count(), p.name)
        .select_from(t.items.outerjoin(t.products, p.gtin == i.product_gtin))
        .where(i.product_gtin.is_not(None), i.lot.is_not(None))
    )
    if not caller.is_regulator:
        is_pack = or_(i.code.contains("/21/"), i.code.startswith("urn:yima:nmpa:"))
        held = or_(i.custodian == caller.org, i.in_transit_to == caller.org)
        q = q.where(or_(p.owner == caller.org, and_(held, is_pack)))
    q = q.group_by(i.product_gtin, i.lot, p.name).order_by(i.product_gtin, i.lot).limit(limit)
    with c.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        LotSummary(
            gtin=str(r[0]),
            lot=str(r[1]),
            count=int(r[2]),
            name=None if r[3] is None else str(r[3]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class CustodyFlow:
    """Who passed a set of packs to whom.

    Attributes:
        orgs: Organisations that logged the packs' own (or parent) events, first seen first.
        edges: ``(from, to, alert)`` → how many times custody passed that way; ``alert`` when
            the receiving entry was logged with an alert.
    """

    orgs: tuple[str, ...]
    edges: Counter[tuple[str, str, bool]]


def custody_flow(c: Container, codes: Sequence[str]) -> CustodyFlow:
    """Custody passes along the organisations that logged each pack's accepted events.

    Follows each code's history in log order (own and parent entries); codes that do not
    load are skipped. The caller must already be allowed to see these packs.
    """
    edges: Counter[tuple[str, str, bool]] = Counter()
    seen: dict[str, None] = {}
    with c.engine.connect() as conn:
        for code in codes:
            try:
                view = item_service.load_item(conn, code)
            except (ServiceError, LedgerError):
                continue
            prev: str | None = None
            for e in item_service.history_entries(conn, view):
                if e.relation not in ("own", "parent"):
                    continue
                seen.setdefault(e.org, None)
                if prev is not None and e.org != prev:
                    edges[(prev, e.org, e.outcome != "accepted")] += 1
                if e.outcome == "accepted":
                    prev = e.org
    return CustodyFlow(tuple(seen), edges)
