"""POST /v1/verify: verdicts, the public journey (no names), scans and the rate limit."""

from __future__ import annotations

from api_world import (
    DC,
    FACTORY,
    GTIN,
    ORGS,
    PH1,
    World,
    _base,
    commission,
    dispense,
    recall_lot,
    receive,
    sgtin,
    ship,
    t,
)

from ledger.identifiers import Sgtin


def _to_pharmacy(world: World, code: str, **kw: str) -> None:
    world.capture("huaxin", [commission([code], **kw)])
    world.capture("huaxin", [ship([code], site=FACTORY, to=DC, time=t(2))])
    world.capture("dc", [receive([code], site=DC, time=t(3))])
    world.capture("dc", [ship([code], site=DC, to=PH1, time=t(4))])
    world.capture("ph1", [receive([code], site=PH1, time=t(5))])


def _verify(world: World, code: str, city: str | None = None) -> dict:
    r = world.client.post("/v1/verify", json={"code": code, "city": city})
    assert r.status_code == 200, r.text
    return r.json()


def test_genuine_with_public_journey_only(world: World) -> None:
    code = sgtin(1)
    _to_pharmacy(world, code)
    printed = Sgtin(gtin=GTIN, serial="S000001", lot="B2501").digital_link(
        "https://id.yima.example"
    )
    body = _verify(world, printed + "?17=270630", "上海")
    assert body["verdict"] == "genuine"
    assert body["verdict_text"]["zh"] and body["verdict_text"]["en"]
    assert body["dispense_count"] == 0 and body["first_dispensed"] is None
    assert body["lot"] == "B2501" and body["expiry"] == "2027-06-30"
    assert body["product"]["generic_name"] == "阿莫西林胶囊"
    assert [(j["city"], j["role"], j["step"]) for j in body["journey"]] == [
        ("石家庄", "manufacturer", "commission"),
        ("石家庄", "manufacturer", "ship"),
        ("武汉", "distributor", "receive"),
        ("武汉", "distributor", "ship"),
        ("上海", "pharmacy", "receive"),
    ]
    assert all(set(j) == {"date", "city", "province", "role", "step"} for j in body["journey"])
    assert len(body["evidence"]) == 5
    # Additive members: no reason unless suspect, no TCM facts for a drug.
    assert body["reason"] is None and body["tcm"] is None
    # Trading partners stay anonymous: no org ids or names of the supply chain.
    text = str(body)
    for org_id in ("dc", "ph1"):
        assert ORGS[org_id]["name"] not in text
        assert f"'{org_id}'" not in text
    assert "huaxin" not in text


def test_unknown_code(world: World) -> None:
    assert _verify(world, sgtin(404))["verdict"] == "unknown_code"
    assert _verify(world, "definitely not a code")["verdict"] == "unknown_code"


def test_dispensed_once_is_genuine_twice_is_already_dispensed(world: World) -> None:
    code = sgtin(1)
    _to_pharmacy(world, code)
    world.capture("ph1", [dispense([code], site=PH1, time=t(6))])
    body = _verify(world, code, "上海")
    assert body["verdict"] == "genuine"
    assert body["dispense_count"] == 1
    assert body["first_dispensed"] == {"date": "2026-12-06", "city": "上海"}
    second = world.capture("ph1", [dispense([code], site=PH1, time=t(7))])
    assert second["results"][0]["alerts"][0]["kind"] == "double_dispense"
    body = _verify(world, code, "上海")
    assert body["verdict"] == "already_dispensed"
    assert body["dispense_count"] == 2


def test_recalled(world: World) -> None:
    code = sgtin(1)
    _to_pharmacy(world, code)
    wire = world.sign("huaxin", [recall_lot(GTIN, "B2501", time=t(6))])
    r = world.client.post("/v1/recalls", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 200, r.text
    assert _verify(world, code)["verdict"] == "recalled"


def test_expired(world: World) -> None:
    code = sgtin(1)
    world.capture("huaxin", [commission([code], expiry="2026-11-30")])
    assert _verify(world, code)["verdict"] == "expired"


def test_suspect_after_impossible_travel(world: World) -> None:
    code = sgtin(1)
    _to_pharmacy(world, code)
    assert _verify(world, code, "上海")["verdict"] == "genuine"
    world.clock.advance(minutes=10)
    body = _verify(world, code, "北京")
    assert body["verdict"] == "suspect"
    assert body["reason"] == "suspected_clone"
    assert body["alerts"] == ["suspected_clone"]
    # The clone alert stays on record: later scans keep saying suspect.
    world.clock.advance(days=1)
    later = _verify(world, code)
    assert later["verdict"] == "suspect" and later["reason"] == "suspected_clone"
    # The owner sees the consumer-scan alert about its product; the pharmacy does not.
    own = world.client.get("/v1/alerts", headers=world.auth("huaxin")).json()["alerts"]
    assert [a["kind"] for a in own] == ["suspected_clone"]
    assert world.client.get("/v1/alerts", headers=world.auth("ph1")).json()["alerts"] == []


def test_verify_records_scans_without_writing_the_log(world: World) -> None:
    code = sgtin(1)
    world.capture("huaxin", [commission([code])])
    size = world.size()
    _verify(world, code, "上海")
    assert world.size() == size


def test_rate_limit(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)])])
    budget = world.container.settings.verify_rate_per_minute
    for _ in range(budget):
        assert world.client.post("/v1/verify", json={"code": sgtin(1)}).status_code == 200
    r = world.client.post("/v1/verify", json={"code": sgtin(1)})
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
    world.clock.advance(seconds=10)
    assert world.client.post("/v1/verify", json={"code": sgtin(1)}).status_code == 200


def _sensor(codes: list[str], celsius: float, *, site: str, time: str) -> dict:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=codes,
        action="OBSERVE",
        bizStep="sensor_reporting",
        sensorElementList=[
            {"sensorReport": [{"type": "Temperature", "value": celsius, "uom": "CEL"}]}
        ],
    )


def test_suspect_reasons_cold_chain_and_destroyed(world: World) -> None:
    hot, gone = sgtin(1), sgtin(2)
    world.capture("huaxin", [commission([hot, gone])])
    receipt = world.capture("huaxin", [_sensor([hot], 45.0, site=FACTORY, time=t(2))])
    assert receipt["results"][0]["alerts"][0]["kind"] == "cold_chain_excursion"
    body = _verify(world, hot)
    assert body["verdict"] == "suspect" and body["reason"] == "cold_chain"
    destroy = _base(
        "ObjectEvent", t(2), FACTORY, epcList=[gone], action="OBSERVE",
        bizStep="destroying", disposition="destroyed",
    )  # fmt: skip
    world.capture("huaxin", [destroy])
    body = _verify(world, gone)
    assert body["verdict"] == "suspect" and body["reason"] == "destroyed"
    assert _verify(world, sgtin(404))["reason"] is None
