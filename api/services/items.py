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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
)

from api.auth import Caller
from api.container import Container
from api.errors import NotFound, PermissionDenied
from api.services.common import (
    ProductInfo,
    canonical_id,
    canonical_item,
    load_descendants,
    load_products,
    state_from_json,
)
from api.statements import ProductStatement, parse_statement
from api.store import tables as t
from ledger import lifecycle as lc
from ledger.identifiers import Identifier, Sgtin

_orjson: ModuleType | None
try:  # an optional accelerator (as in ledger.canonical); json is always the fallback
    import orjson as _orjson_module

    _orjson = _orjson_module
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson = None

__all__ = [
    "HistoryEntry",
    "HistoryLeaf",
    "ItemView",
    "LotPack",
    "StockRow",
    "get_contents",
    "get_history",
    "get_item",
    "history_entries",
    "history_leaves",
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
    code, ident = _canonical_item(code_text)
    rows = _execute(conn, "state", 0, {"code": code})
    if not rows:
        raise NotFound(f"no item {code}")
    return _view(conn, code, ident, rows[0])


def _canonical_item(code_text: str) -> tuple[str, Identifier]:
    """:func:`api.services.common.canonical_item`, without the full parser for the usual form.

    A canonical SGTIN Digital Link (what scanners and the pages send) is built directly: the
    constructor checks the GTIN's check digit and the serial exactly as the parser does.
    """
    text = code_text.strip()
    m = _SGTIN_CANONICAL.fullmatch(text)
    if m is None:
        return canonical_item(text)
    ident = Sgtin(gtin=m.group(1), serial=m.group(2))
    return ident.canonical, ident


def _view(conn: Connection, code: str, ident: Identifier, row: Sequence[Any]) -> ItemView:
    """The item of a row starting (state_json, updated_index, product_gtin, data_json, ...).

    The product is joined through the ``product_gtin`` projection; the state stays the
    authority for which product it is.
    """
    state = state_from_json(row[0])
    product = None
    gtin = state.product_gtin
    if gtin:
        if row[2] == gtin:
            product = _product_info(gtin, row[3], row[4]) if row[3] is not None else None
        else:  # the projection disagrees with the state, the authority: read by the state's key
            product = load_products(conn, [gtin]).get(gtin)
    return ItemView(code, ident, state, int(row[1]), product)


def _product_info(gtin: str, data_json: str, registered_index: int | None) -> ProductInfo | None:
    """The product of a ``products`` row, as :func:`load_products` would give it for ``gtin``.

    The parsed statement is memoised by its JSON text (a few products serve millions of packs;
    parsing one was a visible part of a history).
    """
    stmt = _PRODUCT_MEMO.get(data_json)
    if stmt is None:
        parsed = parse_statement(data_json.encode("utf-8"))
        assert isinstance(parsed, ProductStatement)
        if len(_PRODUCT_MEMO) >= _PRODUCT_MEMO_SIZE:
            _PRODUCT_MEMO.clear()
        _PRODUCT_MEMO[data_json] = stmt = parsed
    return ProductInfo(stmt, registered_index) if stmt.key == gtin else None


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


# --------------------------------------------------------------------------- history
# The hot path of GET /v1/items/{code}/history (docs/PERFORMANCE.md, provenance query). A
# history is usually two statements: the item with its product, own and lot entries; then the
# entries of every unit it was packed in and of the lot's inputs (one more per nesting level).
# Statements are built and compiled once per dialect and run as driver SQL: building and
# compiling them was 15-20 % of a history.

_i, _p, _ie, _e = t.items.c, t.products.c, t.item_events.c, t.entries.c
_KINDS = ("event", "correction")  # the entry kinds that are events of a journey
_KIND_PARAMS = {f"k{j}": k for j, k in enumerate(_KINDS)}
#: ``/01/{gtin}/10/{lot}`` of the row's ``product_gtin`` and ``lot`` projections.
_LOT_KEY = (
    literal_column(f"'{_GS1}/01/'", String)
    + _i.product_gtin
    + literal_column("'/10/'", String)
    + _i.lot
)
_STATE_COLS = (_i.state_json, _i.updated_index, _i.product_gtin, _p.data_json, _p.registered_index)
_ITEM_AND_PRODUCT = t.items.outerjoin(t.products, _p.gtin == _i.product_gtin)


def _build(name: str, n: int) -> Select[Any]:
    """The statement ``name`` (``n``: number of codes of ``entries``)."""
    if name == "state":
        return (
            select(*_STATE_COLS).select_from(_ITEM_AND_PRODUCT).where(_i.code == bindparam("code"))
        )
    kinds = _e.kind.in_([bindparam(f"k{j}", k) for j, k in enumerate(_KINDS)])
    if name == "entries":
        return (
            select(_ie.code, _e.idx, _e.leaf)
            .join(t.entries, _e.idx == _ie.log_index)
            .where(_ie.code.in_([bindparam(f"c{j}") for j in range(n)]), kinds)
        )
    assert name == "history"
    # The item, its product, and the entries indexed under it or under its lot: one row per
    # entry (the item's columns repeated), or one row without an entry.
    return (
        select(*_STATE_COLS, _LOT_KEY, _ie.code, _e.idx, _e.leaf)
        .select_from(
            _ITEM_AND_PRODUCT.outerjoin(t.item_events, _ie.code.in_([_i.code, _LOT_KEY])).outerjoin(
                t.entries, and_(_e.idx == _ie.log_index, kinds)
            )
        )
        .where(_i.code == bindparam("code"))
    )


_SQL: dict[tuple[str, str, str, str, int], tuple[str, tuple[str, ...] | None]] = {}
#: Larger ``IN`` lists are chunked (one compiled statement per size up to this).
_MAX_CODES = 64


def _execute(conn: Connection, name: str, n: int, params: dict[str, Any]) -> list[Sequence[Any]]:
    """The rows of statement ``name``, run as driver SQL compiled once per dialect and ``n``."""
    d = conn.dialect
    key = (d.name, d.driver, d.paramstyle, name, n)
    found = _SQL.get(key)
    if found is None:
        compiled = _build(name, n).compile(dialect=d)
        order = tuple(compiled.positiontup or ()) if d.positional else None
        _SQL[key] = found = (compiled.string, order)
    sql, order = found
    if name != "state":
        params = params | _KIND_PARAMS
    if order is None:
        return list(conn.exec_driver_sql(sql, params))
    return list(conn.exec_driver_sql(sql, tuple(params[k] for k in order)))


#: A canonical SGTIN whose serial needs no percent-encoding (see :func:`_canonical_item`).
_SGTIN_CANONICAL = re.compile(r"https://id\.gs1\.org/01/(\d{14})/21/([A-Za-z0-9._-]{1,20})")
#: Ids of the canonical shapes of ``ledger.journey``'s fast path. Such an id canonicalises
#: to itself (valid check digit) or to nothing (a bad one) — never to a *different* id — so
#: one that differs from the code looked for is a miss without parsing it.
_CANONICAL_SHAPE = re.compile(
    r"https://id\.gs1\.org/(?:01/\d{14}/21/[A-Za-z0-9._-]{1,20}"
    r"|00/\d{18}|414/\d{13}(?:/254/[A-Za-z0-9._-]{1,20})?)"
)
_PRODUCT_MEMO: dict[str, ProductStatement] = {}
_PRODUCT_MEMO_SIZE = 1024

Rows = list[tuple[int, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class HistoryLeaf:
    """One entry of an item's journey with its whole logged leaf (what verify reads)."""

    index: int
    relation: str
    via: str | None
    leaf: Mapping[str, Any]


def _loads(raw: bytes) -> Any:
    """A leaf's JSON; orjson where it can (same values for the canonical JSON leaves hold)."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass  # what orjson refuses (e.g. a lone surrogate escape) json may still read
    return json.loads(raw)


def _first(row: tuple[int, Mapping[str, Any]]) -> int:
    return row[0]


class _Reader:
    """The entries of codes on one connection, for one history.

    Codes are fetched in batches (one statement for every code of a nesting level), each leaf
    is parsed once even when it is indexed under several codes (a packing event names the
    case and every pack), and identifiers are canonicalised at most once per history.
    """

    __slots__ = ("_canon_memo", "_conn", "_leaves", "_rows", "_windows")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._rows: dict[str, Rows] = {}
        self._leaves: dict[int, Mapping[str, Any]] = {}
        self._windows: dict[str, list[tuple[str, int, int | None]]] = {}
        self._canon_memo: dict[str, str] = {}

    def _add(self, got: dict[str, Rows], code: str, idx: int, raw: bytes) -> None:
        leaf = self._leaves.get(idx)
        if leaf is None:
            self._leaves[idx] = leaf = _loads(raw)
        got[code].append((idx, leaf))

    def _store(self, got: dict[str, Rows]) -> None:
        for code, rows in got.items():
            rows.sort(key=_first)
            self._rows[code] = rows

    def load_item(self, code: str, ident: Identifier) -> ItemView:
        """The item, its product, and its own and lot entries, in one statement.

        Raises:
            NotFound: No such item.
        """
        rows = _execute(self._conn, "history", 0, {"code": code})
        if not rows:
            raise NotFound(f"no item {code}")
        view = _view(self._conn, code, ident, rows[0])
        lot_key = rows[0][5]
        got: dict[str, Rows] = {code: []} if lot_key is None else {code: [], lot_key: []}
        for row in rows:
            if row[7] is not None:
                self._add(got, row[6], row[7], row[8])
        self._store(got)
        return view

    def fetch(self, codes: Sequence[str]) -> None:
        """Read the entries of every code not read yet (one statement per 64 codes)."""
        wanted = [c for c in dict.fromkeys(codes) if c not in self._rows]
        for part in range(0, len(wanted), _MAX_CODES):
            batch = wanted[part : part + _MAX_CODES]
            got: dict[str, Rows] = {c: [] for c in batch}
            params = {f"c{j}": c for j, c in enumerate(batch)}
            for code, idx, raw in _execute(self._conn, "entries", len(batch), params):
                self._add(got, code, idx, raw)
            self._store(got)

    def rows(self, code: str) -> Rows:
        """Entries indexed under ``code``, in log order."""
        found = self._rows.get(code)
        if found is None:
            self.fetch([code])
            found = self._rows[code]
        return found

    def canon(self, value: object) -> str | None:
        """Canonical form of an identifier; None for anything that is not one."""
        if not isinstance(value, str):
            return None
        try:
            return canonical_id(value, self._canon_memo)
        except Exception:
            return None

    def names(self, code: str, ids: Any) -> bool:
        """Whether the id list ``ids`` (a ``childEPCs`` value) names ``code`` in any form."""
        if not ids:
            return False
        if not isinstance(ids, list):
            ids = list(ids)  # as iterating it would (never a substring test on a str)
        # Producers that write canonical ids (the ledger's builders, scanners) match as
        # written: ``code`` is canonical, so a raw hit is a hit. On a miss, only ids in
        # another form pay for canonicalisation.
        if code in ids:
            return True
        canon, shape = self.canon, _CANONICAL_SHAPE.fullmatch
        return any(canon(c) == code for c in ids if not (isinstance(c, str) and shape(c)))

    def windows(self, code: str) -> list[tuple[str, int, int | None]]:
        """(parent, pack index, unpack index or None) for each accepted packing of ``code``."""
        found = self._windows.get(code)
        if found is None:
            found = self._windows[code] = _pack_windows(code, self.rows(code), self)
        return found


def _entries(conn: Connection, code: str) -> Rows:
    return _Reader(conn).rows(code)


def _pack_windows(code: str, own: Sequence[tuple[int, Mapping[str, Any]]],
                  reader: _Reader) -> list[tuple[str, int, int | None]]:  # fmt: skip
    """(parent, pack index, unpack index or None) for each accepted packing of ``code``."""
    windows: list[tuple[str, int, int | None]] = []
    open_: dict[str, int] = {}
    for idx, leaf in own:
        ev = leaf["event"]
        if leaf.get("outcome") != "accepted" or ev.get("type") != "AggregationEvent":
            continue
        parent = reader.canon(ev.get("parentID"))
        if parent is None:
            continue
        action = ev.get("action")
        if action == "ADD":
            if reader.names(code, ev.get("childEPCs")):
                open_[parent] = idx
        elif action == "DELETE" and parent in open_:
            children = ev.get("childEPCs") or []
            if not children or reader.names(code, children):
                windows.append((parent, open_.pop(parent), idx))
    windows.extend((p, start, None) for p, start in open_.items())
    return windows


def history_leaves(conn: Connection, code: str, state: lc.ItemState) -> list[HistoryLeaf]:
    """The whole journey of item ``code`` (in ``state``), in log order, each entry once.

    The four relations of docs/spec/08-service.md §8.6, first found wins in this order:
    ``own``; ``parent`` (each packing window, depth first, nested up to 5 levels); ``lot``;
    ``input`` (breadth first through the transformations that made the lot, up to 5 levels).
    One statement for the item and its lot, then one per nesting level.
    """
    return _history(_Reader(conn), code, state)


def _history(reader: _Reader, code: str, state: lc.ItemState) -> list[HistoryLeaf]:
    lot_code = None
    if state.product_gtin and state.lot:
        lot_code = f"{_GS1}/01/{state.product_gtin}/10/{state.lot}"
    reader.fetch([code, lot_code] if lot_code else [code])
    lot_rows = reader.rows(lot_code) if lot_code else []
    inputs: list[tuple[str, int]] = []
    for _, leaf in lot_rows:
        if leaf["event"].get("type") == "TransformationEvent":
            inputs.extend((c, 1) for c in _io(leaf["event"], "input", reader))
    # Level 1 in one statement: the units the item was packed in and the lot's inputs.
    reader.fetch([p for p, _, _ in reader.windows(code)] + [c for c, _ in inputs])

    out: dict[int, HistoryLeaf] = {}
    for idx, leaf in reader.rows(code):
        out[idx] = HistoryLeaf(idx, "own", None, leaf)

    def inherit(child: str, lo: int, hi: int | None, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        windows = reader.windows(child)
        reader.fetch([p for p, _, _ in windows])
        for parent, start, end in windows:
            a = max(start, lo)
            b = end if hi is None else (hi if end is None else min(end, hi))
            if b is not None and a >= b:
                continue
            for idx, leaf in reader.rows(parent):
                if idx > a and (b is None or idx < b) and idx not in out:
                    out[idx] = HistoryLeaf(idx, "parent", parent, leaf)
            inherit(parent, a, b, depth + 1)

    inherit(code, -1, None, 1)

    if lot_code:
        for idx, leaf in lot_rows:
            if idx not in out:
                out[idx] = HistoryLeaf(idx, "lot", lot_code, leaf)
        seen: set[str] = {lot_code}
        while inputs:
            reader.fetch([c for c, d in inputs if c not in seen and d <= _MAX_DEPTH])
            c, depth = inputs.pop(0)
            if c in seen or depth > _MAX_DEPTH:
                continue
            seen.add(c)
            for idx, leaf in reader.rows(c):
                if idx not in out:
                    out[idx] = HistoryLeaf(idx, "input", c, leaf)
                ev = leaf["event"]
                if ev.get("type") == "TransformationEvent" and c in _io(ev, "output", reader):
                    inputs.extend((i, depth + 1) for i in _io(ev, "input", reader))
    return [out[k] for k in sorted(out)]


def history_entries(conn: Connection, view: ItemView) -> list[HistoryEntry]:
    """The whole journey of an item, in log order, each entry once (first relation wins)."""
    return [_entry(h) for h in history_leaves(conn, view.code, view.state)]


def _entry(h: HistoryLeaf) -> HistoryEntry:
    leaf = h.leaf
    return HistoryEntry(
        index=h.index,
        event_id=leaf["event_id"],
        relation=h.relation,
        via=h.via,
        event=leaf["event"],
        record_time=leaf["record_time"],
        outcome=leaf["outcome"],
        org=leaf["org"],
    )


def _io(ev: Mapping[str, Any], side: str, reader: _Reader) -> list[str]:
    """Canonical ids of the ``input`` or ``output`` side of a TransformationEvent."""
    canon = reader.canon
    codes = [canon(c) for c in ev.get(f"{side}EPCList") or []]
    codes += [canon(q.get("epcClass")) for q in ev.get(f"{side}QuantityList") or []]
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
    code, ident = _canonical_item(code_text)
    with c.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # READ COMMITTED gives every statement its own snapshot anyway; without BEGIN
            # and ROLLBACK the read is two fewer round trips to the server.
            conn.execution_options(isolation_level="AUTOCOMMIT")
        reader = _Reader(conn)
        view = reader.load_item(code, ident)
        entries = [_entry(h) for h in _history(reader, code, view.state)]
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
