"""GET /v1/items/{code} (any scanned form), /history (own, parent, lot, input) and /contents."""

from __future__ import annotations

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
    enc,
    pack,
    receive,
    sgtin,
    ship,
    sscc,
    t,
    unpack,
)

from ledger.identifiers import Sgtin, make_nmpa_code


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
