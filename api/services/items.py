"""Item reads: current state, the whole journey, and what is inside a logistic unit.

``{code}`` may be any scanned form; it is parsed and reduced to the canonical key first
(docs/spec/08-service.md §8.6). History is assembled from the item index (``item_events``):

* ``own``: entries indexed under the item itself (what named it, or changed it alone);
* ``parent``: while the item was packed in a case/pallet (from the packing entry to the
  unpacking entry), the entries of that parent in that window — recursively for nested units;
* ``lot``: entries about the item's lot as a class (LGTIN: recalls, the transformation that
  produced the lot);
* ``input``: for a lot produced by a TransformationEvent (TCM decoction pieces), the entries of
  its input lots, recursively (bounded depth).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from api.auth import Caller
from api.container import Container
from api.errors import NotFound, PermissionDenied
from api.services.common import (
    ProductInfo,
    canonical_item,
    load_descendants,
    load_products,
    load_states,
)
from api.store import tables as t
from ledger import lifecycle as lc
from ledger.identifiers import Identifier, epc_to_canonical

__all__ = [
    "HistoryEntry",
    "ItemView",
    "LotPack",
    "StockRow",
    "get_contents",
    "get_history",
    "get_item",
    "history_entries",
    "load_item",
    "lot_packs",
    "org_stock",
]

_MAX_DEPTH = 5
_GS1 = "https://id.gs1.org"


@dataclass(frozen=True, slots=True)
class ItemView:
    """An item's current state with the context readers need."""

    code: str
    ident: Identifier
    state: lc.ItemState
    updated_index: int
    product: ProductInfo | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One log entry of an item's journey."""

    index: int
    event_id: str
    relation: str
    via: str | None
    event: Mapping[str, Any]
    record_time: str
    outcome: str
    org: str


def load_item(conn: Connection, code_text: str) -> ItemView:
    """Parse ``code_text`` and load the item's state and product.

    Raises:
        CodeError: Unreadable code (422).
        NotFound: No such item was ever commissioned.
    """
    code, ident = canonical_item(code_text)
    found = load_states(conn, [code])
    if code not in found:
        raise NotFound(f"no item {code}")
    state, idx = found[code]
    product = None
    if state.product_gtin:
        product = load_products(conn, [state.product_gtin]).get(state.product_gtin)
    return ItemView(code, ident, state, idx, product)


def _may_read(caller: Caller, view: ItemView, orgs: set[str]) -> None:
    """Regulators, the product owner, holders and anyone who logged an event about it."""
    s = view.state
    if caller.is_regulator or caller.org in orgs:
        return
    if caller.org in (s.custodian, s.in_transit_to, s.commissioned_by):
        return
    if view.product is not None and view.product.statement.owner == caller.org:
        return
    raise PermissionDenied(f"{caller.org!r} has no part in the journey of {view.code}")


def _entries(conn: Connection, code: str) -> list[tuple[int, dict[str, Any]]]:
    ie, e = t.item_events.c, t.entries.c
    rows = conn.execute(
        select(e.idx, e.leaf)
        .join(t.item_events, ie.log_index == e.idx)
        .where(ie.code == code, e.kind.in_(("event", "correction")))
        .order_by(e.idx)
    )
    return [(r[0], json.loads(r[1])) for r in rows]


def _entry(idx: int, leaf: Mapping[str, Any], relation: str, via: str | None) -> HistoryEntry:
    return HistoryEntry(
        index=idx,
        event_id=leaf["event_id"],
        relation=relation,
        via=via,
        event=leaf["event"],
        record_time=leaf["record_time"],
        outcome=leaf["outcome"],
        org=leaf["org"],
    )


def _canon(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return epc_to_canonical(value)
    except Exception:
        return None


def _pack_windows(
    code: str, own: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[tuple[str, int, int | None]]:
    """(parent, pack index, unpack index or None) for each accepted packing of ``code``."""
    windows: list[tuple[str, int, int | None]] = []
    open_: dict[str, int] = {}
    for idx, leaf in own:
        ev = leaf["event"]
        if leaf.get("outcome") != "accepted" or ev.get("type") != "AggregationEvent":
            continue
        parent = _canon(ev.get("parentID"))
        if parent is None:
            continue
        children = [_canon(c) for c in ev.get("childEPCs") or []]
        action = ev.get("action")
        if action == "ADD" and code in children:
            open_[parent] = idx
        elif action == "DELETE" and parent in open_ and (not children or code in children):
            windows.append((parent, open_.pop(parent), idx))
    windows.extend((p, start, None) for p, start in open_.items())
    return windows


def history_entries(conn: Connection, view: ItemView) -> list[HistoryEntry]:
    """The whole journey of an item, in log order, each entry once (first relation wins)."""
    out: dict[int, HistoryEntry] = {}
    own = _entries(conn, view.code)
    for idx, leaf in own:
        out[idx] = _entry(idx, leaf, "own", None)

    def inherit(code: str, rows: Sequence[tuple[int, Mapping[str, Any]]], lo: int, hi: int | None,
                depth: int) -> None:  # fmt: skip
        if depth > _MAX_DEPTH:
            return
        for parent, start, end in _pack_windows(code, rows):
            a = max(start, lo)
            b = end if hi is None else (hi if end is None else min(end, hi))
            if b is not None and a >= b:
                continue
            prow = _entries(conn, parent)
            for idx, leaf in prow:
                if idx > a and (b is None or idx < b) and idx not in out:
                    out[idx] = _entry(idx, leaf, "parent", parent)
            inherit(parent, prow, a, b, depth + 1)

    inherit(view.code, own, -1, None, 1)

    s = view.state
    if s.product_gtin and s.lot:
        lot_code = f"{_GS1}/01/{s.product_gtin}/10/{s.lot}"
        inputs: list[tuple[str, int]] = []
        for idx, leaf in _entries(conn, lot_code):
            out.setdefault(idx, _entry(idx, leaf, "lot", lot_code))
            if leaf["event"].get("type") == "TransformationEvent":
                inputs.extend((c, 1) for c in _inputs_of(leaf["event"]))
        seen: set[str] = {lot_code}
        while inputs:
            code, depth = inputs.pop(0)
            if code in seen or depth > _MAX_DEPTH:
                continue
            seen.add(code)
            for idx, leaf in _entries(conn, code):
                out.setdefault(idx, _entry(idx, leaf, "input", code))
                ev = leaf["event"]
                if ev.get("type") == "TransformationEvent" and code in _outputs_of(ev):
                    inputs.extend((c, depth + 1) for c in _inputs_of(ev))
    return [out[k] for k in sorted(out)]


def _inputs_of(ev: Mapping[str, Any]) -> list[str]:
    codes = [_canon(c) for c in ev.get("inputEPCList") or []]
    codes += [_canon(q.get("epcClass")) for q in ev.get("inputQuantityList") or []]
    return [c for c in codes if c]


def _outputs_of(ev: Mapping[str, Any]) -> list[str]:
    codes = [_canon(c) for c in ev.get("outputEPCList") or []]
    codes += [_canon(q.get("epcClass")) for q in ev.get("outputQuantityList") or []]
    return [c for c in codes if c]


def get_item(c: Container, caller: Caller, code_text: str) -> ItemView:
    """Current state of an item, for a party with a part in its journey.

    Raises:
        CodeError: Unreadable code. NotFound: unknown item. PermissionDenied: no part in it.
    """
    with c.engine.connect() as conn:
        view = load_item(conn, code_text)
        orgs = {leaf["org"] for _, leaf in _entries(conn, view.code)}
    _may_read(caller, view, orgs)
    return view


def get_history(
    c: Container, caller: Caller, code_text: str
) -> tuple[ItemView, list[HistoryEntry]]:
    """The whole journey of an item (own, inherited from parents, its lot, input lots).

    Raises:
        CodeError: Unreadable code. NotFound: unknown item. PermissionDenied: no part in it.
    """
    with c.engine.connect() as conn:
        view = load_item(conn, code_text)
        entries = history_entries(conn, view)
    _may_read(caller, view, {e.org for e in entries if e.relation == "own"})
    return view, entries


def get_contents(
    c: Container, caller: Caller, code_text: str
) -> tuple[ItemView, list[tuple[str, int, str | None]]]:
    """What is inside a logistic unit now: ``(code, depth, parent)`` breadth first.

    Raises:
        CodeError: Unreadable code. NotFound: unknown item. PermissionDenied: no part in it.
    """
    with c.engine.connect() as conn:
        view = load_item(conn, code_text)
        orgs = {leaf["org"] for _, leaf in _entries(conn, view.code)}
        inside = load_descendants(conn, [view.code])
    _may_read(caller, view, orgs)
    rows = sorted(inside.items(), key=lambda kv: (kv[1][2], kv[0]))
    return view, [(code, depth, st.parent) for code, (st, _, depth) in rows]


# --------------------------------------------------------------------------- grouped reads
# Lot and stock listings (the dashboard's lot and organisation pages). Read-only projections
# of the items table, under the same visibility rules as single items.


@dataclass(frozen=True, slots=True)
class LotPack:
    """One pack of a lot, where it is now."""

    code: str
    status: str
    custodian: str | None
    location: str | None
    in_transit_to: str | None
    recalled: bool
    quarantined: bool
    expiry: str | None


def _gtin14(gtin: str) -> str:
    g = gtin.strip()
    return g.zfill(14) if g.isdigit() else g


def lot_packs(c: Container, caller: Caller, gtin: str, lot: str) -> list[LotPack]:
    """Every pack of lot ``gtin``/``lot`` that the caller may see, by code.

    Regulators and the product's owner see every pack. Another organisation sees the packs
    it holds or that are in transit to it (the item rule of §8.6 restricted to what the
    ``items`` projections carry); if that is none, it may not see the lot at all.
    Lot-level rows (an LGTIN quantity, e.g. a herb lot) describe the lot, not a pack, and
    are left out.

    Raises:
        PermissionDenied: Not a regulator, not the owner, and no pack of the lot is theirs.
    """
    g, lot = _gtin14(gtin), lot.strip()
    i, p = t.items.c, t.products.c
    q = (
        select(
            i.code, i.status, i.custodian, i.location, i.in_transit_to, i.recalled,
            i.quarantined, i.expiry,
        )
        .where(i.product_gtin == g, i.lot == lot)
        .order_by(i.code)
    )  # fmt: skip
    with c.engine.connect() as conn:
        owner = conn.execute(select(p.owner).where(p.gtin == g)).scalar_one_or_none()
        sees_all = caller.is_regulator or (owner is not None and owner == caller.org)
        if not sees_all:
            q = q.where(or_(i.custodian == caller.org, i.in_transit_to == caller.org))
        rows = conn.execute(q).all()
    packs = [
        LotPack(
            code=r[0], status=r[1], custodian=r[2], location=r[3], in_transit_to=r[4],
            recalled=bool(r[5]), quarantined=bool(r[6]),
            expiry=r[7].isoformat() if r[7] else None,
        )
        for r in rows
        if "/21/" in r[0] or r[0].startswith("urn:yima:nmpa:")
    ]  # fmt: skip
    if not sees_all and not packs:
        raise PermissionDenied(f"{caller.org!r} has no part in lot {lot} of {g}")
    return packs


@dataclass(frozen=True, slots=True)
class StockRow:
    """Packs an organisation holds, grouped by location, product, lot and status."""

    location: str | None
    gtin: str | None
    product_name: str | None
    lot: str | None
    status: str
    count: int


#: What counts as stock: held (active, returned) or shipped and not yet received.
_STOCK_STATUSES = (lc.STATUS_ACTIVE, lc.STATUS_RETURNED, lc.STATUS_IN_TRANSIT)


def org_stock(c: Container, caller: Caller, org: str) -> list[StockRow]:
    """The stock of ``org`` (items it is custodian of), by location, product, lot, status.

    An organisation sees its own stock; regulators see everyone's.

    Raises:
        PermissionDenied: Another organisation's stock, for a non-regulator.
        NotFound: ``org`` is not registered.
    """
    if not caller.is_regulator and caller.org != org:
        raise PermissionDenied(f"{caller.org!r} may not see the stock of {org!r}")
    i, p, o = t.items.c, t.products.c, t.orgs.c
    with c.engine.connect() as conn:
        if conn.execute(select(o.id).where(o.id == org)).scalar_one_or_none() is None:
            raise NotFound(f"organisation {org!r} is not registered")
        rows = conn.execute(
            select(i.location, i.product_gtin, p.name, i.lot, i.status, func.count())
            .select_from(t.items.outerjoin(t.products, p.gtin == i.product_gtin))
            .where(i.custodian == org, i.status.in_(_STOCK_STATUSES))
            .group_by(i.location, i.product_gtin, p.name, i.lot, i.status)
            .order_by(i.location, i.product_gtin, i.lot, i.status)
        ).all()
    return [StockRow(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
