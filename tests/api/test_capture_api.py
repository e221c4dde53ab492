"""POST /v1/captures and POST /epcis/capture: verification, idempotency, chains, rules."""

from __future__ import annotations

import base64
import json

from api_world import (
    DC,
    FACTORY,
    PH1,
    PH2,
    World,
    commission,
    dispense,
    enc,
    receive,
    seed,
    sgtin,
    ship,
    t,
)

from api.statements import revoke_statement, sign_statement
from ledger.epcis import document


def test_happy_capture(world: World) -> None:
    before = world.size()
    body = world.capture("huaxin", [commission([sgtin(1), sgtin(2)])])
    assert body["duplicate"] is False
    assert body["producer"] == "huaxin/k1" and body["seq"] == 0
    assert body["size"] == before + 1 == world.size()
    (res,) = body["results"]
    assert res["status"] == "accepted" and res["alerts"] == []
    assert res["index"] == before
    assert body["checkpoint"].startswith("yima.test/log/api\n")
    item = world.client.get(f"/v1/items/{enc(sgtin(1))}", headers=world.auth("huaxin")).json()
    assert item["status"] == "active" and item["custodian"] == "huaxin"


def test_duplicate_capture_writes_nothing(world: World) -> None:
    wire = world.sign("huaxin", [commission([sgtin(1)])])
    first = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    size = world.size()
    again = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert again.status_code == 200
    assert world.size() == size
    a, b = first.json(), again.json()
    assert b["duplicate"] is True
    assert {**a, "duplicate": True} == b


def test_seq_reuse_is_conflict_and_chain_stays(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)])])
    size = world.size()
    other = world.sign("huaxin", [commission([sgtin(2)])], seq=0, prev=None, advance=False)
    r = world.client.post("/v1/captures", json=other, headers=world.auth("huaxin"))
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert world.size() == size
    # The producer's chain is intact: seq 1 chained to the first capture still goes in.
    world.capture("huaxin", [commission([sgtin(3)])])


def test_chain_gap_is_conflict(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)])])
    gap = world.sign("huaxin", [commission([sgtin(2)])], seq=5, advance=False)
    r = world.client.post("/v1/captures", json=gap, headers=world.auth("huaxin"))
    assert r.status_code == 409
    problem = r.json()
    assert problem["expected"] == 1 and problem["actual"] == 5


def test_bad_signature_is_422(world: World) -> None:
    wire = world.sign("huaxin", [commission([sgtin(1)])], advance=False)
    sig = bytearray(base64.b64decode(wire["signature"]))
    sig[0] ^= 1
    wire["signature"] = base64.b64encode(bytes(sig)).decode()
    size = world.size()
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert world.size() == size


def test_tampered_event_is_422(world: World) -> None:
    wire = world.sign("huaxin", [commission([sgtin(1)])], advance=False)
    wire["events"][0]["epcList"] = [sgtin(99)]
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 422


def test_key_of_another_org_is_403_and_nothing_written(world: World) -> None:
    size = world.size()
    # huaxin's capture, submitted with the rival's token.
    wire = world.sign("huaxin", [commission([sgtin(1)])], advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("rival"))
    assert r.status_code == 403
    # The rival signs as huaxin's producer name with its own (unregistered there) key.
    wire = world.sign("huaxin", [commission([sgtin(1)])], key=seed("rival"), advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 403
    assert world.size() == size


def test_missing_or_unknown_token_is_401(world: World) -> None:
    wire = world.sign("huaxin", [commission([sgtin(1)])], advance=False)
    r = world.client.post("/v1/captures", json=wire)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = world.client.post("/v1/captures", json=wire, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_wrong_role_is_403_and_nothing_written(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)])])
    size = world.size()
    # A distributor may never dispense (authorization, not a rule): refused, not logged.
    wire = world.sign("dc", [dispense([sgtin(1)], site=DC, time=t(2))], advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("dc"))
    assert r.status_code == 403
    # Nor scan at a site it does not operate.
    wire = world.sign("dc", [receive([sgtin(1)], site=PH1, time=t(2))], advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("dc"))
    assert r.status_code == 403
    assert world.size() == size


def test_revoked_key_is_403(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1)])])
    keys = world.client.get("/v1/orgs/huaxin", headers=world.auth("huaxin")).json()["keys"]
    stmt = revoke_statement(
        org="huaxin", key_id_hex=keys[0]["key_id"], reason="lost", signer="huaxin/k1",
        created="2026-12-01T00:00:00Z",
    )  # fmt: skip
    r = world.client.post(
        "/v1/keys/revoke",
        json=sign_statement(stmt, world.keys["huaxin"]).to_wire(),
        headers=world.auth("huaxin"),
    )
    assert r.status_code == 201, r.text
    size = world.size()
    wire = world.sign("huaxin", [commission([sgtin(2)])], advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 403
    assert world.size() == size


def test_rule_violation_logged_with_alert_state_not_advanced(world: World) -> None:
    code = sgtin(1)
    world.capture("huaxin", [commission([code])])
    world.capture("huaxin", [ship([code], site=FACTORY, to=PH1, time=t(2))])
    # ph2 receives goods shipped to ph1: diversion (R3) — logged as evidence, refused.
    size = world.size()
    body = world.capture("ph2", [receive([code], site=PH2, time=t(3))])
    (res,) = body["results"]
    assert res["status"] == "alert"
    assert res["alerts"][0]["kind"] == "diversion" and res["alerts"][0]["rule"] == "R3"
    assert world.size() == size + 1
    item = world.client.get(f"/v1/items/{enc(code)}", headers=world.auth("nmpa")).json()
    assert item["status"] == "in_transit" and item["custodian"] == "huaxin"
    alerts = world.client.get("/v1/alerts", headers=world.auth("nmpa")).json()["alerts"]
    assert [a["kind"] for a in alerts] == ["diversion"]
    assert alerts[0]["index"] == res["index"]
    leaf = world.client.get(f"/v1/log/entries?start={size}&end={size + 1}").json()["entries"][0]
    logged = json.loads(base64.b64decode(leaf["leaf"]))
    assert logged["outcome"] == "alert" and logged["alerts"][0]["kind"] == "diversion"


def test_later_events_see_earlier_ones_in_the_same_capture(world: World) -> None:
    code = sgtin(1)
    body = world.capture(
        "huaxin",
        [commission([code]), ship([code], site=FACTORY, to=DC, time=t(2))],
    )
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    body = world.capture("dc", [receive([code], site=DC, time=t(3))])
    assert body["results"][0]["status"] == "accepted"


def test_same_event_twice_is_conflict(world: World) -> None:
    ev = commission([sgtin(1)])
    world.capture("huaxin", [ev])
    wire = world.sign("huaxin", [ev], advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 409


def test_epcis_capture_document(world: World) -> None:
    events = [commission([sgtin(1)]), commission([sgtin(2)], time=t(1, 11))]
    wire = world.sign("huaxin", events)
    doc = document(events, creation_date="2026-12-01T00:00:00Z")
    headers = {
        **world.auth("huaxin"),
        "Yima-Capture-Payload": wire["payload"],
        "Yima-Capture-Signature": wire["signature"],
    }
    r = world.client.post("/epcis/capture", json=doc, headers=headers)
    assert r.status_code == 201, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"]
    again = world.client.post("/epcis/capture", json=doc, headers=headers)
    assert again.status_code == 201 and again.json()["duplicate"] is True


def test_invalid_epcis_event_is_422(world: World) -> None:
    ev = commission([sgtin(1)])
    ev["action"] = "SOMETIMES"
    wire = world.sign("huaxin", [ev], advance=False)
    r = world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 422
    assert "path" in r.json()


# --------------------------------------------------------------------------- recalls, alerts


def test_recall_by_owner_marks_the_lot_everywhere(world: World) -> None:
    from api_world import GTIN, recall_lot

    codes = [sgtin(1), sgtin(2), sgtin(3)]
    world.capture("huaxin", [commission(codes)])
    world.capture("huaxin", [ship(codes[:1], site=FACTORY, to=DC, time=t(2))])
    wire = world.sign("huaxin", [recall_lot(GTIN, "B2501", time=t(3))])
    r = world.client.post("/v1/recalls", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 200, r.text
    assert r.json()["affected"] == 3
    for code in codes:
        item = world.client.get(f"/v1/items/{enc(code)}", headers=world.auth("huaxin")).json()
        assert item["recalled"] is True
    # Each pack's history shows the recall.
    hist = world.client.get(f"/v1/items/{enc(codes[0])}/history", headers=world.auth("huaxin"))
    assert hist.json()["events"][-1]["event"]["disposition"] == "recalled"


def test_recall_by_stranger_is_403_and_nothing_written(world: World) -> None:
    from api_world import GTIN, RIVAL_SITE, recall_lot

    world.capture("huaxin", [commission([sgtin(1)])])
    size = world.size()
    wire = world.sign("rival", [recall_lot(GTIN, "B2501", time=t(3), site=RIVAL_SITE)])
    r = world.client.post("/v1/recalls", json=wire, headers=world.auth("rival"))
    assert r.status_code == 403
    assert world.size() == size
    # A regulator may recall any lot.
    wire = world.sign("nmpa", [recall_lot(GTIN, "B2501", time=t(3))])
    r = world.client.post("/v1/recalls", json=wire, headers=world.auth("nmpa"))
    assert r.status_code == 200, r.text
    assert r.json()["affected"] == 1
    # The recall endpoint takes recall events only.
    wire = world.sign("huaxin", [commission([sgtin(2)])], advance=False)
    r = world.client.post("/v1/recalls", json=wire, headers=world.auth("huaxin"))
    assert r.status_code == 403


def test_alert_visibility(world: World) -> None:
    code = sgtin(1)
    world.capture("huaxin", [commission([code])])
    world.capture("huaxin", [commission([code], time=t(1, 12))])  # recommission: huaxin's alert
    world.capture("huaxin", [ship([code], site=FACTORY, to=PH1, time=t(2))])
    world.capture("ph2", [receive([code], site=PH2, time=t(3))])  # diversion: ph2's alert
    every = world.client.get("/v1/alerts", headers=world.auth("nmpa")).json()["alerts"]
    assert [a["kind"] for a in every] == ["recommission", "diversion"]
    own = world.client.get("/v1/alerts", headers=world.auth("ph2")).json()["alerts"]
    assert [(a["kind"], a["org"]) for a in own] == [("diversion", "ph2")]
    own = world.client.get("/v1/alerts", headers=world.auth("huaxin")).json()["alerts"]
    assert [a["kind"] for a in own] == ["recommission"]
    assert world.client.get("/v1/alerts", headers=world.auth("dc")).json()["alerts"] == []
    filtered = world.client.get(
        "/v1/alerts", params={"kind": "diversion", "code": code}, headers=world.auth("nmpa")
    ).json()["alerts"]
    assert len(filtered) == 1 and filtered[0]["codes"] == [code]
