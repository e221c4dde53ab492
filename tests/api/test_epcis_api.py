"""EPCIS 2.0 REST query subset: filters, pagination, single event, events by EPC."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from api_world import DC, FACTORY, GTIN, PH1, World, commission, enc, receive, sgtin, ship, t

from ledger.identifiers import Sgtin


def _world(world: World) -> list[str]:
    codes = [sgtin(i) for i in range(1, 6)]
    world.capture("huaxin", [commission([c], time=t(1, 8 + i)) for i, c in enumerate(codes)])
    world.capture("huaxin", [ship(codes[:2], site=FACTORY, to=DC, time=t(2))])
    world.capture("dc", [receive(codes[:2], site=DC, time=t(3))])
    world.capture("dc", [ship(codes[:1], site=DC, to=PH1, time=t(4))])
    return codes


def _events(world: World, org: str = "nmpa", **params: object) -> tuple[list[dict], object]:
    r = world.client.get("/epcis/events", params=params, headers=world.auth(org))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "EPCISQueryDocument"
    return doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"], r


def test_filters(world: World) -> None:
    codes = _world(world)
    evs, _ = _events(world)
    assert len(evs) == 8
    assert all(e["eventID"].startswith("ni:///") and "recordTime" in e for e in evs)
    evs, _ = _events(world, EQ_bizStep="shipping")
    assert len(evs) == 2
    evs, _ = _events(world, EQ_bizStep="urn:epcglobal:cbv:bizstep:receiving")
    assert len(evs) == 1
    evs, _ = _events(world, EQ_disposition="active")
    assert len(evs) == 5
    evs, _ = _events(world, eventType="AggregationEvent")
    assert evs == []
    evs, _ = _events(world, GE_eventTime="2026-12-02T00:00:00+08:00")
    assert len(evs) == 3
    evs, _ = _events(world, LT_eventTime="2026-12-01T10:00:00+08:00")
    assert len(evs) == 2
    evs, _ = _events(world, EQ_bizLocation=DC)
    assert [e["bizStep"] for e in evs] == ["receiving", "shipping"]
    # MATCH_epc in URN form finds events naming the pack in epcList.
    urn = "urn:epc:id:sgtin:6901234.000001.S000001"
    evs, _ = _events(world, MATCH_epc=urn)
    assert [e["bizStep"] for e in evs] == ["commissioning", "shipping", "receiving", "shipping"]
    evs, _ = _events(world, MATCH_anyEPC=codes[4])
    assert len(evs) == 1
    evs, _ = _events(world, MATCH_epc=f"{codes[0]},{codes[1]}", EQ_bizStep="shipping")
    assert len(evs) == 2


def test_non_regulators_see_their_own_events(world: World) -> None:
    _world(world)
    evs, _ = _events(world, "dc")
    assert [e["bizStep"] for e in evs] == ["receiving", "shipping"]
    evs, _ = _events(world, "ph1")
    assert evs == []


def test_pagination(world: World) -> None:
    _world(world)
    seen: list[str] = []
    params: dict[str, object] = {"perPage": 3}
    pages = 0
    while True:
        evs, r = _events(world, **params)
        pages += 1
        seen.extend(e["eventID"] for e in evs)
        link = r.headers.get("link")  # type: ignore[attr-defined]
        if not link:
            break
        assert 'rel="next"' in link
        assert r.headers["GS1-Next-Page-Token-Expires"]  # type: ignore[attr-defined]
        url = link[1 : link.index(">")]
        token = parse_qs(urlparse(url).query)["nextPageToken"][0]
        params = {"perPage": 3, "nextPageToken": token}
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    # A token only continues the query it came from.
    r = world.client.get(
        "/epcis/events",
        params={"perPage": 3, "EQ_bizStep": "shipping", "nextPageToken": token},
        headers=world.auth("nmpa"),
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_event_by_id_and_events_by_epc(world: World) -> None:
    _world(world)
    evs, _ = _events(world)
    eid = evs[0]["eventID"]
    r = world.client.get(f"/epcis/events/{enc(eid)}", headers=world.auth("nmpa"))
    assert r.status_code == 200, r.text
    (ev,) = r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert ev["eventID"] == eid
    # Another party's event is "not found" for a stranger.
    r = world.client.get(f"/epcis/events/{enc(eid)}", headers=world.auth("ph1"))
    assert r.status_code == 404
    dl = Sgtin(gtin=GTIN, serial="S000001", lot="B2501").digital_link("https://id.yima.example")
    r = world.client.get(f"/epcis/epcs/{enc(dl)}/events", headers=world.auth("nmpa"))
    assert r.status_code == 200
    assert len(r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == 4


def test_bad_query_parameters(world: World) -> None:
    r = world.client.get(
        "/epcis/events", params={"GE_eventTime": "yesterday"}, headers=world.auth("nmpa")
    )
    assert r.status_code == 400
    r = world.client.get("/epcis/events", params={"MATCH_epc": "nope"}, headers=world.auth("nmpa"))
    assert r.status_code == 400
    r = world.client.get("/epcis/events", params={"perPage": 0}, headers=world.auth("nmpa"))
    assert r.status_code == 422
    assert world.client.get("/epcis/events").status_code == 401
