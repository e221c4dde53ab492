"""Dashboard via TestClient: token login (cookie + CSRF), alerts, recall form, lot, org pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_seed import WebWorld, recall_capture

from api.auth import Caller, caller_for_token_hash, hash_token
from api.errors import PermissionDenied
from api.services.dashboard import lot_summaries
from api.services.items import lot_packs, org_stock
from api.web.dashboard import SESSION_COOKIE
from fixtures import world


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]*)"', html)
    assert m, "form without CSRF field"
    return m.group(1)


def _login(client: TestClient, token: str) -> None:
    page = client.get("/dashboard/login")
    r = client.post(
        "/dashboard/login",
        data={"csrf": _csrf(page.text), "token": token, "next": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert token not in cookie  # the browser never keeps the bearer token itself


@pytest.fixture
def regulator(web_world: WebWorld) -> TestClient:
    client = web_world.client
    client.cookies.clear()
    _login(client, web_world.seeded.tokens["js-mpa"])
    return client


def test_pages_need_login(web_world: WebWorld) -> None:
    web_world.client.cookies.clear()
    for path in ("/dashboard", "/dashboard/alerts", "/dashboard/recall", "/dashboard/log"):
        r = web_world.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")


def test_bad_token_and_missing_csrf_are_refused(web_world: WebWorld) -> None:
    client = web_world.client
    client.cookies.clear()
    page = client.get("/dashboard/login")
    bad = client.post("/dashboard/login", data={"csrf": _csrf(page.text), "token": "yima_nope"})
    assert bad.status_code == 401 and "令牌无效" in bad.text
    assert SESSION_COOKIE not in bad.headers.get("set-cookie", "")
    token = web_world.seeded.tokens["js-mpa"]
    no_csrf = client.post("/dashboard/login", data={"csrf": "x", "token": token})
    assert no_csrf.status_code == 403


def test_forged_session_cookie_is_ignored(web_world: WebWorld) -> None:
    client = web_world.client
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, "eyJoIjoiMDAifQ.AAAA", path="/dashboard")
    r = client.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303


def test_overview_and_alerts(regulator: TestClient) -> None:
    home = regulator.get("/dashboard")
    assert home.status_code == 200 and 'id="log-size"' in home.text
    alerts = regulator.get("/dashboard/alerts")
    assert "double_dispense" in alerts.text
    assert "/v1/log/proof/inclusion?index=" in alerts.text  # evidence links
    assert "ni:///sha-256;" in alerts.text  # evidence event ids
    only = regulator.get("/dashboard/alerts", params={"kind": "double_dispense"})
    kinds = set(re.findall(r'<tr data-kind="([^"]+)"', only.text))
    assert kinds == {"double_dispense"}
    none = regulator.get("/dashboard/alerts", params={"since": "2999-01-01"})
    assert 'id="no-alerts"' in none.text
    gd = regulator.get("/dashboard/alerts", params={"province": "广东省"})
    js = regulator.get("/dashboard/alerts", params={"province": "江苏省"})
    assert gd.status_code == js.status_code == 200
    product = regulator.get("/dashboard/alerts", params={"product": world.AMOXICILLIN.gtin})
    assert '<tr data-kind="double_dispense"' in product.text
    other = regulator.get("/dashboard/alerts", params={"product": world.HEPB_VACCINE.gtin})
    assert '<tr data-kind="double_dispense"' not in other.text


def test_recall_form_shows_the_signing_command(regulator: TestClient) -> None:
    r = regulator.get(
        "/dashboard/recall",
        params={"gtin": world.IBUPROFEN.gtin, "lot": "X1", "reason": "it's bad"},
    )
    assert r.status_code == 200
    cmd = re.search(r'<pre class="cmd" id="recall-command">([^<]+)</pre>', r.text)
    assert cmd and "yima-scan recall --gtin" in cmd.group(1)
    assert "&#39;it&#39;&#34;&#39;&#34;&#39;s bad&#39;" in cmd.group(1)  # shell-quoted, escaped


def test_recall_post_needs_csrf_and_a_signed_capture(
    web_world: WebWorld, regulator: TestClient
) -> None:
    r = web_world.seeded.result
    lot = regulator.get(web_world.path(r.vaccine_in_stock), headers={"Accept": "application/json"})
    lot_no = lot.json()["lot"]
    cap = json.dumps(recall_capture(world.HEPB_VACCINE.gtin, lot_no, "test recall"))
    refused = regulator.post("/dashboard/recall", data={"csrf": "forged", "capture": cap})
    assert refused.status_code == 403
    page = regulator.get("/dashboard/recall")
    junk = regulator.post("/dashboard/recall", data={"csrf": _csrf(page.text), "capture": "{"})
    assert junk.status_code == 422 and "召回未被接受" in junk.text
    ok = regulator.post("/dashboard/recall", data={"csrf": _csrf(page.text), "capture": cap})
    assert ok.status_code == 200, ok.text
    assert "召回已记入账本" in ok.text
    verdict = regulator.get(
        web_world.path(r.vaccine_in_stock), headers={"Accept": "application/json"}
    )
    assert verdict.json()["verdict"] == "recalled"


def test_lot_item_and_log_pages(web_world: WebWorld, regulator: TestClient) -> None:
    r = web_world.seeded.result
    item = regulator.get(web_world.path(r.twice_dispensed), headers={"Accept": "application/json"})
    lot_no = item.json()["lot"]
    lot = regulator.get("/dashboard/lot", params={"gtin": world.AMOXICILLIN.gtin, "lot": lot_no})
    assert lot.status_code == 200
    assert int(re.search(r'id="lot-count">(\d+)<', lot.text).group(1)) >= 4
    assert "<svg" in lot.text and "chart--network" in lot.text
    assert world.BAIXINGKANG.name in lot.text  # regulators see names
    page = regulator.get("/dashboard/item", params={"code": r.twice_dispensed})
    assert page.status_code == 200 and "chart--timeline" in page.text
    assert regulator.get("/dashboard/item", params={"code": "nonsense"}).status_code in (400, 422)
    log = regulator.get("/dashboard/log")
    assert "/v1/log/checkpoint" in log.text and "— yima.example/log" in log.text


def test_org_pages_are_private(web_world: WebWorld) -> None:
    client = web_world.client
    client.cookies.clear()
    _login(client, web_world.seeded.tokens[world.BAIXINGKANG.id])
    home = client.get("/dashboard", follow_redirects=False)
    assert home.headers["location"].startswith(f"/dashboard/orgs/{world.BAIXINGKANG.id}")
    own = client.get(f"/dashboard/orgs/{world.BAIXINGKANG.id}")
    assert own.status_code == 200 and 'id="stock"' in own.text
    assert client.get(f"/dashboard/orgs/{world.YIMIN.id}").status_code == 403
    assert client.get("/dashboard/alerts").status_code == 200  # its own alerts only
    client.cookies.clear()


def test_logout(web_world: WebWorld, regulator: TestClient) -> None:
    page = regulator.get("/dashboard/log")
    r = regulator.post("/dashboard/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert SESSION_COOKIE in r.headers.get("set-cookie", "")


def test_item_page_links_the_proof_bundle(web_world: WebWorld, regulator: TestClient) -> None:
    code = web_world.seeded.result.genuine
    page = regulator.get("/dashboard/item", params={"code": code})
    m = re.search(r'<a class="btn" id="bundle-link" href="([^"]+)"', page.text)
    assert m, "no bundle link on the item page"
    href = m.group(1).replace("&amp;", "&")
    r = regulator.get(href)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/vnd.yima.bundle.v1+json")
    assert "attachment" in r.headers["content-disposition"]
    assert json.loads(r.content)  # the bundle itself (checked by the bundle's own tests)
    # The same access rule as the API: a party with no part in the journey gets 403.
    outsider = web_world.client
    outsider.cookies.clear()
    _login(outsider, web_world.seeded.tokens[world.YIMIN.id])
    assert outsider.get(href).status_code == 403
    outsider.cookies.clear()


def test_lot_and_stock_services_apply_visibility(web_world: WebWorld) -> None:
    c = web_world.container
    r = web_world.seeded.result
    lot = web_world.client.get(
        web_world.path(r.twice_dispensed), headers={"Accept": "application/json"}
    ).json()["lot"]
    gtin = world.AMOXICILLIN.gtin
    regulator = Caller(org=world.JS_MPA.id, role="regulator")
    every = lot_packs(c, regulator, gtin, lot)
    assert len(every) >= 4 and all("/21/" in p.code for p in every)
    owner = world.org(world.AMOXICILLIN.owner)
    assert lot_packs(c, Caller(org=owner.id, role=owner.role), gtin, lot) == every
    holder = world.BAIXINGKANG
    mine = lot_packs(c, Caller(org=holder.id, role=holder.role), gtin, lot)
    assert mine and all(holder.id in (p.custodian, p.in_transit_to) for p in mine)
    with pytest.raises(PermissionDenied):
        lot_packs(c, Caller(org=world.YIMIN.id, role=world.YIMIN.role), gtin, lot)
    stock = org_stock(c, Caller(org=holder.id, role=holder.role), holder.id)
    assert stock and sum(s.count for s in stock) >= 1
    assert org_stock(c, regulator, holder.id) == stock
    with pytest.raises(PermissionDenied):
        org_stock(c, Caller(org=world.YIMIN.id, role=world.YIMIN.role), holder.id)


def test_lot_summaries_apply_lot_visibility(web_world: WebWorld) -> None:
    c = web_world.container
    regulator = Caller(org=world.JS_MPA.id, role="regulator")
    every = lot_summaries(c, regulator, limit=1000)
    assert every and all(s.count >= 1 for s in every)
    owner = world.org(world.AMOXICILLIN.owner)
    owned = lot_summaries(c, Caller(org=owner.id, role=owner.role), limit=1000)
    amox = [s for s in every if s.gtin == world.AMOXICILLIN.gtin]
    assert amox and all(s in owned for s in amox)  # the owner sees its lots in full
    for org in (world.BAIXINGKANG, world.YIMIN, owner):
        caller = Caller(org=org.id, role=org.role)
        seen = lot_summaries(c, caller, limit=1000)
        assert {(s.gtin, s.lot) for s in seen} <= {(s.gtin, s.lot) for s in every}
        for s in seen:  # every listed lot opens for this caller (items.lot_packs agrees)
            packs = lot_packs(c, caller, s.gtin, s.lot)
            assert s.count >= len(packs)
    held = lot_summaries(c, Caller(org=world.BAIXINGKANG.id, role=world.BAIXINGKANG.role))
    assert held and len(held) < len(every)
    # A lot the caller has no part in is not listed (lot_packs refuses it).
    for s in every:
        if (s.gtin, s.lot) not in {(h.gtin, h.lot) for h in held}:
            with pytest.raises(PermissionDenied):
                lot_packs(c, Caller(org=world.BAIXINGKANG.id, role=world.BAIXINGKANG.role),
                          s.gtin, s.lot)  # fmt: skip


def test_web_layer_holds_no_sql() -> None:
    web_dir = Path(__file__).resolve().parents[2] / "api" / "web"
    offenders = [
        f"{path.name}: {needle}"
        for path in sorted(web_dir.rglob("*.py"))
        for needle in ("engine.connect", "select(", "sqlalchemy", ".engine")
        if needle in path.read_text(encoding="utf-8")
    ]
    assert offenders == [], "api/web must read through api/services: " + ", ".join(offenders)


def test_token_hash_lookup(web_world: WebWorld) -> None:
    token = web_world.seeded.tokens[world.BAIXINGKANG.id]
    caller = caller_for_token_hash(web_world.container.engine, hash_token(token))
    assert caller == Caller(org=world.BAIXINGKANG.id, role=world.BAIXINGKANG.role)
    assert caller_for_token_hash(web_world.container.engine, hash_token("yima_nope")) is None
