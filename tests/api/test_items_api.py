"""GET /v1/items/{code} (any scanned form), /history (own, parent, lot, input) and /contents."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from api_world import (
    DC,
    DL,
    FACTORY,
    GTIN,
    GTIN_HERB,
    GTIN_PIECES,
    PH1,
    World,
    commission,
    dispense,
    enc,
    pack,
    recall_lot,
    receive,
    sgtin,
    ship,
    sscc,
    t,
    unpack,
)
from sqlalchemy import Connection, select

from api.services.items import history_entries, load_item
from api.services.verify import verify_code
from api.store import tables as tb
from ledger.errors import LedgerError
from ledger.identifiers import Sgtin, epc_to_canonical, make_nmpa_code


def test_lookup_by_every_scanned_form(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)], lot="B2501")])
    ident = Sgtin(gtin=GTIN, serial="S000001", lot="B2501")
    forms = [
        sgtin(1),
        ident.digital_link("https://id.yima.example"),
        ident.digital_link("https://id.yima.example") + "?17=270630",
        ident.element_string(),
        "]d2" + ident.element_string(),
        ident.hri(),
        "urn:epc:id:sgtin:6901234.000001.S000001",
    ]
    for form in forms:
        r = world.client.get(f"/v1/items/{enc(form)}", headers=world.auth("huaxin"))
        assert r.status_code == 200, (form, r.text)
        body = r.json()
        assert body["code"] == sgtin(1)
        assert body["kind"] == "sgtin"
        assert body["lot"] == "B2501" and body["expiry"] == "2027-06-30"
        assert body["product"]["generic_name"] == "阿莫西林胶囊"


def test_lookup_by_nmpa_code(world: World) -> None:
    code = make_nmpa_code("8690123", "000000000011")
    world.capture("huaxin", [commission([f"urn:yima:nmpa:{code}"])])
    for form in (code, f"urn:yima:nmpa:{code}"):
        r = world.client.get(f"/v1/items/{enc(form)}", headers=world.auth("huaxin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] == "nmpa"
        assert body["product"]["gtin"] == GTIN  # via the product's 药品标识码


def test_unknown_and_unreadable_codes(world: World) -> None:
    r = world.client.get(f"/v1/items/{enc(sgtin(77))}", headers=world.auth("huaxin"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = world.client.get("/v1/items/(01)06901234000017(21)X", headers=world.auth("huaxin"))
    assert r.status_code == 422
    assert r.json()["type"].endswith("bad-code")


def test_items_need_a_part_in_the_journey(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)])])
    r = world.client.get(f"/v1/items/{enc(sgtin(1))}", headers=world.auth("ph2"))
    assert r.status_code == 403
    r = world.client.get(f"/v1/items/{enc(sgtin(1))}", headers=world.auth("nmpa"))
    assert r.status_code == 200
    r = world.client.get(f"/v1/items/{enc(sgtin(1))}")
    assert r.status_code == 401


def _journey(world: World) -> tuple[str, list[str]]:
    case = sscc(1)
    packs = [sgtin(1), sgtin(2)]
    world.capture("huaxin", [commission(packs), pack(case, packs)])
    world.capture("huaxin", [ship([case], site=FACTORY, to=DC, time=t(2))])
    world.capture("dc", [receive([case], site=DC, time=t(3))])
    world.capture("dc", [unpack(case, [packs[0]], site=DC, time=t(4))])
    world.capture("dc", [ship([packs[0]], site=DC, to=PH1, time=t(5))])
    world.capture("ph1", [receive([packs[0]], site=PH1, time=t(6))])
    return case, packs


def test_history_inherits_parent_events_while_packed(world: World) -> None:
    case, packs = _journey(world)
    r = world.client.get(f"/v1/items/{enc(packs[0])}/history", headers=world.auth("ph1"))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    steps = [(e["relation"], e["event"]["bizStep"], e["via"]) for e in events]
    assert steps == [
        ("own", "commissioning", None),
        ("own", "packing", None),
        ("parent", "shipping", case),
        ("parent", "receiving", case),
        ("own", "unpacking", None),
        ("own", "shipping", None),
        ("own", "receiving", None),
    ]
    indices = [e["index"] for e in events]
    assert indices == sorted(indices)
    assert all(e["event_id"].startswith("ni:///sha-256;") for e in events)
    # The pack still in the case inherits the case's events without an end.
    r = world.client.get(f"/v1/items/{enc(packs[1])}/history", headers=world.auth("dc"))
    rel = [(e["relation"], e["event"]["bizStep"]) for e in r.json()["events"]]
    assert ("parent", "receiving") in rel and ("parent", "unpacking") in rel


def test_contents_recursive(world: World) -> None:
    pallet, case1, case2 = sscc(10), sscc(11), sscc(12)
    a, b, c = sgtin(1), sgtin(2), sgtin(3)
    world.capture(
        "huaxin",
        [
            commission([a, b, c]),
            pack(case1, [a, b]),
            pack(case2, [c]),
            pack(pallet, [case1, case2]),
        ],
    )
    r = world.client.get(f"/v1/items/{enc(pallet)}/contents", headers=world.auth("huaxin"))
    assert r.status_code == 200, r.text
    children = r.json()["children"]
    assert [(x["code"], x["depth"]) for x in children] == [
        (case1, 1),
        (case2, 1),
        (a, 2),
        (b, 2),
        (c, 2),
    ]
    r = world.client.get(f"/v1/items/{enc(pallet)}", headers=world.auth("huaxin"))
    assert r.json()["kind"] == "sscc"
    r = world.client.get(f"/v1/items/{enc(a)}", headers=world.auth("huaxin"))
    assert r.json()["parent"] == case1


def test_history_of_tcm_pieces_includes_input_herb_lot(world: World) -> None:
    herb_lot = f"{DL}/01/{GTIN_HERB}/10/H2026"
    pieces_lot = f"{DL}/01/{GTIN_PIECES}/10/P2026"
    herb_in = {
        "type": "ObjectEvent",
        "eventTime": t(1),
        "eventTimeZoneOffset": "+08:00",
        "epcList": [],
        "quantityList": [{"epcClass": herb_lot, "quantity": 100, "uom": "KGM"}],
        "action": "ADD",
        "bizStep": "commissioning",
        "bizLocation": {"id": FACTORY},
    }
    transform = {
        "type": "TransformationEvent",
        "eventTime": t(2),
        "eventTimeZoneOffset": "+08:00",
        "inputQuantityList": [{"epcClass": herb_lot, "quantity": 100, "uom": "KGM"}],
        "outputQuantityList": [{"epcClass": pieces_lot, "quantity": 85, "uom": "KGM"}],
        "bizStep": "commissioning",
        "bizLocation": {"id": FACTORY},
    }
    piece = sgtin(1, GTIN_PIECES)
    world.capture("huaxin", [herb_in, transform])
    world.capture("huaxin", [commission([piece], lot="P2026", time=t(3))])
    r = world.client.get(f"/v1/items/{enc(piece)}/history", headers=world.auth("huaxin"))
    assert r.status_code == 200, r.text
    rel = [(e["relation"], e["event"]["type"], e["via"]) for e in r.json()["events"]]
    assert rel == [
        ("input", "ObjectEvent", herb_lot),
        ("lot", "TransformationEvent", pieces_lot),
        ("own", "ObjectEvent", None),
    ]


@pytest.mark.parametrize("suffix", ["", "/history", "/contents"])
def test_item_errors_are_problems(world: World, suffix: str) -> None:
    r = world.client.get(f"/v1/items/{enc(sgtin(5))}{suffix}", headers=world.auth("nmpa"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


# --------------------------------------------------------------------------- reference reader
# The history of docs/spec/08-service.md §8.6 read the plain way: one statement per code, every
# identifier through the full parser. The service's reader batches statements, parses each leaf
# once and compares identifiers as written first; it must give exactly these entries.


def _ref_entries(conn: Connection, code: str) -> list[tuple[int, dict[str, Any]]]:
    ie, e = tb.item_events.c, tb.entries.c
    rows = conn.execute(
        select(e.idx, e.leaf)
        .join(tb.item_events, ie.log_index == e.idx)
        .where(ie.code == code, e.kind.in_(("event", "correction")))
        .order_by(e.idx)
    )
    return [(r[0], json.loads(r[1])) for r in rows]


def _ref_canon(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return epc_to_canonical(value)
    except Exception:
        return None


def _ref_windows(
    code: str, own: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[tuple[str, int, int | None]]:
    windows: list[tuple[str, int, int | None]] = []
    open_: dict[str, int] = {}
    for idx, leaf in own:
        ev = leaf["event"]
        if leaf.get("outcome") != "accepted" or ev.get("type") != "AggregationEvent":
            continue
        parent = _ref_canon(ev.get("parentID"))
        if parent is None:
            continue
        children = [_ref_canon(c) for c in ev.get("childEPCs") or []]
        action = ev.get("action")
        if action == "ADD" and code in children:
            open_[parent] = idx
        elif action == "DELETE" and parent in open_ and (not children or code in children):
            windows.append((parent, open_.pop(parent), idx))
    windows.extend((p, start, None) for p, start in open_.items())
    return windows


def _ref_io(ev: Mapping[str, Any], side: str) -> list[str]:
    codes = [_ref_canon(c) for c in ev.get(f"{side}EPCList") or []]
    codes += [_ref_canon(q.get("epcClass")) for q in ev.get(f"{side}QuantityList") or []]
    return [c for c in codes if c]


def _ref_history(
    conn: Connection, code: str, gtin: str | None, lot: str | None
) -> list[tuple[int, str, str | None, str]]:
    out: dict[int, tuple[int, str, str | None, str]] = {}
    own = _ref_entries(conn, code)
    for idx, leaf in own:
        out[idx] = (idx, "own", None, leaf["event_id"])

    def inherit(child: str, rows: Sequence[tuple[int, Mapping[str, Any]]], lo: int,
                hi: int | None, depth: int) -> None:  # fmt: skip
        if depth > 5:
            return
        for parent, start, end in _ref_windows(child, rows):
            a = max(start, lo)
            b = end if hi is None else (hi if end is None else min(end, hi))
            if b is not None and a >= b:
                continue
            prow = _ref_entries(conn, parent)
            for idx, leaf in prow:
                if idx > a and (b is None or idx < b) and idx not in out:
                    out[idx] = (idx, "parent", parent, leaf["event_id"])
            inherit(parent, prow, a, b, depth + 1)

    inherit(code, own, -1, None, 1)
    if gtin and lot:
        lot_code = f"{DL}/01/{gtin}/10/{lot}"
        inputs: list[tuple[str, int]] = []
        for idx, leaf in _ref_entries(conn, lot_code):
            out.setdefault(idx, (idx, "lot", lot_code, leaf["event_id"]))
            if leaf["event"].get("type") == "TransformationEvent":
                inputs.extend((c, 1) for c in _ref_io(leaf["event"], "input"))
        seen = {lot_code}
        while inputs:
            c, depth = inputs.pop(0)
            if c in seen or depth > 5:
                continue
            seen.add(c)
            for idx, leaf in _ref_entries(conn, c):
                out.setdefault(idx, (idx, "input", c, leaf["event_id"]))
                ev = leaf["event"]
                if ev.get("type") == "TransformationEvent" and c in _ref_io(ev, "output"):
                    inputs.extend((i, depth + 1) for i in _ref_io(ev, "input"))
    return [out[k] for k in sorted(out)]


def _urn(n: int) -> str:
    """``sgtin(n)`` as an EPC URN (the form some scanners send)."""
    return f"urn:epc:id:sgtin:6901234.000001.S{n:06d}"


def test_history_matches_the_reference_reader(world: World) -> None:
    """Nested units, ids in other forms, partial and full unpacking, TCM inputs, a recall."""
    a, b, c, d, e, f = (sgtin(n) for n in range(1, 7))
    case1, case2, case3, pallet = sscc(1), sscc(2), sscc(3), sscc(9)
    herb_lot = f"{DL}/01/{GTIN_HERB}/10/H2026"
    herb2_lot = f"{DL}/01/{GTIN_HERB}/10/H2027"
    pieces_lot = f"{DL}/01/{GTIN_PIECES}/10/P2026"

    def transform(inputs: list[str], output: str, day: int) -> dict[str, Any]:
        return {
            "type": "TransformationEvent", "eventTime": t(day), "eventTimeZoneOffset": "+08:00",
            "inputQuantityList": [{"epcClass": i, "quantity": 50, "uom": "KGM"} for i in inputs],
            "outputQuantityList": [{"epcClass": output, "quantity": 85, "uom": "KGM"}],
            "bizStep": "commissioning", "bizLocation": {"id": FACTORY},
        }  # fmt: skip

    def herb(lot: str, day: int) -> dict[str, Any]:
        return {
            "type": "ObjectEvent", "eventTime": t(day), "eventTimeZoneOffset": "+08:00",
            "epcList": [], "quantityList": [{"epcClass": lot, "quantity": 100, "uom": "KGM"}],
            "action": "ADD", "bizStep": "commissioning", "bizLocation": {"id": FACTORY},
        }  # fmt: skip

    p1, p2 = sgtin(7, GTIN_PIECES), sgtin(8, GTIN_PIECES)
    world.capture("huaxin", [
        herb(herb_lot, 1), herb(herb2_lot, 1),
        transform([herb_lot], herb2_lot, 1),  # a herb lot partly made from another
        transform([herb_lot, herb2_lot], pieces_lot, 1),
        commission([a, b, c, d, e, f], time=t(1, 9)),
        commission([p1, p2], lot="P2026", time=t(1, 9)),
        pack(case1, [a, _urn(2), c], time=t(1, 10)),
        pack(case2, [d, e], time=t(1, 10)),
        pack(case3, [p1, p2], time=t(1, 10)),
        pack(pallet, [case1, f"https://id.yima.example/00/{case2[len(DL) + 4 :]}"],
             time=t(1, 11)),
        ship([pallet], site=FACTORY, to=DC, time=t(2)),
    ])  # fmt: skip
    world.capture("dc", [
        receive([pallet], site=DC, time=t(3)),
        unpack(pallet, [case1], site=DC, time=t(4)),
        unpack(case1, [_urn(1)], site=DC, time=t(4, 10)),
        ship([a], site=DC, to=PH1, time=t(5)),
        pack(case1, [f], site=DC, time=t(5, 10)),  # f was never in case1 before: a new window
        unpack(pallet, [], site=DC, time=t(6)),  # no children: everything comes out
    ])  # fmt: skip
    world.capture("ph1", [receive([a], site=PH1, time=t(6)), dispense([a], site=PH1, time=t(7))])
    world.capture("huaxin", [recall_lot(GTIN_PIECES, "P2026", time=t(8), site=FACTORY)])

    c_ = world.container
    with c_.engine.connect() as conn:
        items = conn.execute(select(tb.items.c.code)).scalars().all()
        assert {a, case1, pallet, p1} <= set(items)
        relations: set[str] = set()
        for code in items:
            view = load_item(conn, code)
            got = [(h.index, h.relation, h.via, h.event_id) for h in history_entries(conn, view)]
            want = _ref_history(conn, code, view.state.product_gtin, view.state.lot)
            assert got == want, code
            relations.update(r for _, r, _, _ in got)
    assert relations == {"own", "parent", "lot", "input"}
    # verify's journey is the same reader's accepted entries.
    for code in (a, b, e, p1, p2):
        with c_.engine.connect() as conn:
            want_idx = [h.index for h in history_entries(conn, load_item(conn, code))
                        if h.outcome == "accepted"]  # fmt: skip
        result = verify_code(c_, "test", code, None)
        assert [s.index for s in result.journey] == want_idx, code


def test_history_of_a_pack_through_a_pallet(world: World) -> None:
    """A golden history: a pack inherits its case's and the case's pallet's entries."""
    a, b = sgtin(1), sgtin(2)
    case, pallet = sscc(1), sscc(9)
    world.capture("huaxin", [
        commission([a, b]), pack(case, [a, _urn(2)]), pack(pallet, [case], time=t(1, 11)),
        ship([pallet], site=FACTORY, to=DC, time=t(2)),
    ])  # fmt: skip
    world.capture("dc", [
        receive([pallet], site=DC, time=t(3)), unpack(pallet, [case], site=DC, time=t(4)),
        ship([case], site=DC, to=PH1, time=t(5)),
    ])  # fmt: skip
    world.capture("ph1", [receive([case], site=PH1, time=t(6)),
                          unpack(case, [a], site=PH1, time=t(7))])  # fmt: skip
    r = world.client.get(f"/v1/items/{enc(b)}/history", headers=world.auth("ph1"))
    assert r.status_code == 200, r.text
    steps = [(e["relation"], e["event"]["bizStep"], e["via"]) for e in r.json()["events"]]
    assert steps == [
        ("own", "commissioning", None),
        ("own", "packing", None),  # named as an EPC URN: still the pack's packing
        ("parent", "packing", case),  # the case into the pallet
        ("parent", "shipping", pallet),
        ("parent", "receiving", pallet),
        ("parent", "unpacking", case),  # the pallet's unpacking names the case
        ("parent", "shipping", case),
        ("parent", "receiving", case),
        ("parent", "unpacking", case),  # a partial unpacking of the case (not of b)
    ]


@pytest.mark.parametrize(
    "text",
    [
        sgtin(1),
        f"  {sgtin(2)}\n",
        f"{DL}/01/{GTIN}/21/A.b-c_9",
        f"{DL}/01/{GTIN}/21/{'x' * 20}",
        f"{DL}/01/06901234000017/21/S1",  # wrong check digit
        f"{DL}/01/{GTIN}/21/{'x' * 21}",  # serial too long: the full parser decides
        f"{DL}/01/{GTIN}/21/a%2Fb",
        sscc(1),
    ],
)
def test_item_code_shortcut_agrees_with_the_parser(text: str) -> None:
    """The history's shortcut for canonical SGTINs reads codes exactly as the parser does."""
    from api.services import items
    from api.services.common import canonical_item

    try:
        want: object = canonical_item(text)
    except Exception as exc:
        want = type(exc)
    try:
        got: object = items._canonical_item(text)
    except Exception as exc:
        got = type(exc)
    assert got == want
    # Ids of the canonical shape canonicalise to themselves or to nothing, never to another
    # id (what lets a packing event's other children be skipped without parsing).
    stripped = text.strip()
    if items._CANONICAL_SHAPE.fullmatch(stripped):
        with contextlib.suppress(LedgerError):  # a bad check digit: no id at all
            assert epc_to_canonical(stripped) == stripped
