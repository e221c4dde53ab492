"""The demo world and its scripted journey keep the promises `make demo` prints.

The world is loaded through the service layer and the journey is played over HTTP through
TestClient on a SQLite file with a fixed clock; then the outcomes are checked over HTTP as a
consumer and a regulator would see them. One test runs ``yima demo --no-serve`` for real.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures import demo, journey, world
from ledger import identifiers

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Played:
    client: TestClient
    result: journey.JourneyResult
    tokens: dict[str, str]

    def auth(self, org: world.Org) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[org.id]}"}

    def verify(self, code: str) -> dict[str, Any]:
        resp = self.client.post("/v1/verify", json={"code": code, "city": "上海"})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def get(self, path: str, org: world.Org = world.JS_MPA) -> dict[str, Any]:
        resp = self.client.get(path, headers=self.auth(org))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    from api.app import create_app

    workdir = tmp_path_factory.mktemp("demo") / "var" / "demo"
    c = demo.build_container(workdir, clock=lambda: NOW)
    try:
        tokens = demo.load_world(c)
        with TestClient(create_app(c.settings, container=c)) as client:
            result = journey.run(client, tokens, start=NOW - timedelta(days=10), clock=lambda: NOW)
            yield Played(client, result, tokens)
    finally:
        c.engine.dispose()


# --------------------------------------------------------------------------- the world as data


def test_world_numbers_are_valid_gs1_keys_under_china_prefixes() -> None:
    for o in world.ORGS:
        for g in (o.party_gln, *(s.gln for s in o.sites)):
            identifiers.verify_check_digit(g)
            assert 690 <= int(g[:3]) <= 699
    for p in world.PRODUCTS:
        identifiers.verify_check_digit(p.gtin)
        assert 690 <= int(p.gtin[1:4]) <= 699
        assert p.owner in {o.id for o in world.ORGS}


def test_world_has_the_promised_cast() -> None:
    roles = [o.role for o in world.ORGS]
    assert roles.count("manufacturer") >= 3
    assert roles.count("distributor") >= 2
    assert roles.count("pharmacy") >= 2
    assert "vaccination_site" in roles
    regulators = [o for o in world.ORGS if o.role == "regulator"]
    assert len({o.province for o in regulators}) >= 2
    assert {p.category for p in world.PRODUCTS} == {"drug", "vaccine", "tcm_pieces", "herb"}
    vaccine = world.HEPB_VACCINE
    assert (vaccine.storage_min_c, vaccine.storage_max_c) == (2.0, 8.0)
    assert vaccine.approval_no.startswith("国药准字S")
    assert world.AMOXICILLIN.approval_no.startswith("国药准字H") and world.AMOXICILLIN.rx
    assert not world.IBUPROFEN.rx and world.IBUPROFEN.otc_class


def test_demo_keys_and_tokens_are_deterministic_and_marked() -> None:
    assert world.demo_key("x").public_key.raw == world.demo_key("x").public_key.raw
    producers = [d.producer for o in world.ORGS for d in o.all_devices]
    key_ids = [d.key_id for o in world.ORGS for d in o.all_devices]
    assert len(set(producers)) == len(producers) and len(set(key_ids)) == len(key_ids)
    assert all(o.token.startswith("yima_demo_") for o in world.ORGS)
    assert "DEMO ONLY" in world.DEMO_ONLY
    assert "DEMO ONLY" in (world.__doc__ or "")


# --------------------------------------------------------------------------- journey outcomes


def test_duplicate_dispense_is_logged_with_an_alert_naming_the_first(played: Played) -> None:
    (res,) = played.result.double_dispense["results"]
    assert res["status"] == "alert"
    (alert,) = res["alerts"]
    assert alert["kind"] == "double_dispense"
    assert world.BAIXINGKANG.id in alert["message"]
    alerts = played.get("/v1/alerts")["alerts"]
    dd = [a for a in alerts if a["kind"] == "double_dispense"]
    assert dd and played.result.twice_dispensed in dd[0]["codes"]


def test_recall_marks_every_pack_of_the_lot_wherever_it_is(played: Played) -> None:
    assert played.result.recall["affected"] == len(played.result.recalled_packs) == 4
    custodians = set()
    for code in played.result.recalled_packs:
        item = played.get(f"/v1/items/{journey.item_path(code)}")
        assert item["recalled"] is True
        custodians.add(item["custodian"])
    # Two packs sit at the distributor, two at the pharmacy: both were reached.
    assert custodians == {world.NANYUE.id, world.YIMIN.id}
    genuine = played.get(f"/v1/items/{journey.item_path(played.result.genuine)}")
    assert genuine["recalled"] is False


@pytest.mark.parametrize(
    ("attr", "verdict"),
    [
        ("genuine", "genuine"),
        ("recalled", "recalled"),
        ("twice_dispensed", "already_dispensed"),
        ("unknown", "unknown_code"),
        ("vaccine_administered", "genuine"),
        ("tcm_pack", "genuine"),
    ],
)
def test_verify_verdicts(played: Played, attr: str, verdict: str) -> None:
    code = getattr(played.result, attr)
    body = played.verify(code)
    assert body["verdict"] == verdict, body
    # The same answer for what a phone scans off the label (resolver domain, lot, expiry).
    label = played.result.labels.get(code, code)
    assert played.verify(label)["verdict"] == verdict


def test_verify_accepts_the_printed_label_form(played: Played) -> None:
    label = played.result.printed["amoxicillin"]
    assert label.startswith("https://id.yima.example/01/") and "/10/" in label
    assert played.verify(label)["verdict"] in {"genuine", "already_dispensed"}


def test_verify_never_names_trading_partners(played: Played) -> None:
    body = played.verify(played.result.genuine)
    text = str(body)
    # The maker (上市许可持有人) is printed on the box and is public master data; the
    # distributors and pharmacies it passed through are trading partners and must not show.
    for o in world.ORGS:
        if o.role != "manufacturer":
            assert o.name not in text and o.id not in text
    cities = {step["city"] for step in body["journey"]}
    assert {"南京"} <= cities


def test_vaccine_was_administered_in_the_cold_chain(played: Played) -> None:
    item = played.get(f"/v1/items/{journey.item_path(played.result.vaccine_administered)}")
    assert item["status"] == "dispensed"
    assert item["first_dispense"]["administered"] is True
    assert item["first_dispense"]["org"] == world.TAOYUAN.id
    assert item["quarantined"] is False  # the sensor report stayed inside 2–8 °C
    assert item["product"]["category"] == "vaccine"


def test_tcm_pack_history_reaches_the_herb_lot(played: Played) -> None:
    r = played.result
    history = played.get(f"/v1/items/{journey.item_path(r.tcm_pack)}/history")["events"]
    types = [e["event"]["type"] for e in history]
    assert "TransformationEvent" in types
    herb = [e for e in history if e["via"] == r.herb_lot]
    assert herb, history
    intake = herb[0]["event"]
    assert intake["ilmd"]["yima:origin"] == "甘肃 岷县"
    # The bag's own journey is there too: commissioning, shipping, receiving.
    steps = {e["event"].get("bizStep") for e in history if e["relation"] == "own"}
    assert {"commissioning", "shipping", "receiving"} <= steps


def test_pack_history_inherits_the_case_journey(played: Played) -> None:
    r = played.result
    history = played.get(f"/v1/items/{journey.item_path(r.genuine)}/history")["events"]
    via_case = [e for e in history if e["relation"] == "parent"]
    assert via_case and all(e["via"] == r.cases["amoxicillin"] for e in via_case)
    assert "shipping" in {e["event"].get("bizStep") for e in via_case}


# --------------------------------------------------------------------------- the real runner


@pytest.mark.slow
def test_yima_demo_no_serve_exits_zero(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo", "--no-serve", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "/docs" in out and "/v1/verify" in out and "DEMO ONLY" in out
    for o in world.ORGS:
        assert o.token in out
    # Isolation: everything went under the working directory's var/demo, nothing elsewhere.
    assert (tmp_path / "var" / "demo" / "yima.db").exists()
