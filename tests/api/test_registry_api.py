"""Orgs, keys (rotation, revocation) and products: signed statements on the log."""

from __future__ import annotations

import base64
import json

from api_world import CREATED, GTIN, GTIN_RIVAL, World, commission, seed, sgtin

from api.statements import (
    key_statement,
    org_statement,
    product_statement,
    revoke_statement,
    sign_statement,
)


def _post(world: World, path: str, signed, org: str):  # type: ignore[no-untyped-def]
    return world.client.post(path, json=signed.to_wire(), headers=world.auth(org))


def test_orgs_and_products_are_listed(world: World) -> None:
    orgs = world.client.get("/v1/orgs", headers=world.auth("ph1")).json()
    assert {o["id"] for o in orgs} == {"nmpa", "huaxin", "dc", "ph1", "ph2", "rival"}
    huaxin = world.client.get("/v1/orgs/huaxin", headers=world.auth("ph1")).json()
    assert huaxin["role"] == "manufacturer"
    assert huaxin["locations"][0] == {
        "gln": "6901234000023",
        "city": "石家庄",
        "province": "河北省",
    }
    assert huaxin["keys"][0]["name"] == "huaxin/k1"
    p = world.client.get(f"/v1/products/{GTIN}", headers=world.auth("ph1")).json()
    assert p["approval_number"] == "国药准字H20000000" and p["rx"] is True
    assert p["owner"] == "huaxin"
    assert (
        world.client.get("/v1/products/8690123", headers=world.auth("ph1")).json()["gtin"] == GTIN
    )
    products = world.client.get("/v1/products?owner=rival", headers=world.auth("ph1")).json()
    assert [x["gtin"] for x in products] == [GTIN_RIVAL]
    assert world.client.get("/v1/orgs/nobody", headers=world.auth("ph1")).status_code == 404


def test_org_registration_is_a_logged_statement(world: World) -> None:
    stmt = org_statement(
        org_id="ph3", name="新药房", role="pharmacy", signer="nmpa/k1", created=CREATED,
        locations=[{"gln": "6900000000007", "city": "杭州", "province": "浙江省"}],
    )  # fmt: skip
    signed = sign_statement(stmt, world.keys["nmpa"])
    size = world.size()
    r = _post(world, "/v1/orgs", signed, "nmpa")
    assert r.status_code == 201, r.text
    assert r.json()["index"] == size and r.json()["kind"] == "org"
    leaf = world.client.get(f"/v1/log/entries?start={size}&end={size + 1}").json()["entries"][0]
    logged = json.loads(base64.b64decode(leaf["leaf"]))
    assert logged["kind"] == "org"
    assert base64.b64decode(logged["statement"]) == signed.body
    # Only a regulator registers organisations, and only with a regulator key.
    assert _post(world, "/v1/orgs", signed, "huaxin").status_code == 403
    forged = sign_statement({**stmt, "signer": "huaxin/k1"}, world.keys["huaxin"])
    assert _post(world, "/v1/orgs", forged, "nmpa").status_code == 403
    bad = sign_statement(stmt, world.keys["huaxin"])  # claims nmpa/k1, signed by huaxin
    assert _post(world, "/v1/orgs", bad, "nmpa").status_code == 403


def test_key_rotation_and_revocation(world: World) -> None:
    new = seed("huaxin-2")
    kst = key_statement(
        org="huaxin", name="huaxin/k2", public_key=new.public_key, signer="nmpa/k1",
        created=CREATED,
    )  # fmt: skip
    r = _post(world, "/v1/orgs/huaxin/keys", sign_statement(kst, world.keys["nmpa"]), "nmpa")
    assert r.status_code == 201, r.text
    # Registering the same key twice is a conflict; a key for another org's path is refused.
    r = _post(world, "/v1/orgs/huaxin/keys", sign_statement(kst, world.keys["nmpa"]), "nmpa")
    assert r.status_code == 409
    r = _post(world, "/v1/orgs/dc/keys", sign_statement(kst, world.keys["nmpa"]), "nmpa")
    assert r.status_code == 400
    # The new key signs captures under its own producer name.
    from ledger.capture import build_capture, to_wire

    cap = build_capture(
        new, producer="huaxin/k2", seq=0, prev=None, events=[commission([sgtin(1)])],
        created=CREATED,
    )  # fmt: skip
    r = world.client.post("/v1/captures", json=to_wire(cap), headers=world.auth("huaxin"))
    assert r.status_code == 200, r.text
    # Revoke the old key (regulator-signed); its captures are refused from then on.
    keys = world.client.get("/v1/orgs/huaxin", headers=world.auth("huaxin")).json()["keys"]
    old = next(k for k in keys if k["name"] == "huaxin/k1")
    rst = revoke_statement(
        org="huaxin", key_id_hex=old["key_id"], reason="rotated", signer="nmpa/k1",
        created=CREATED,
    )  # fmt: skip
    # A stranger cannot revoke someone else's key.
    stranger = sign_statement({**rst, "signer": "rival/k1"}, world.keys["rival"])
    assert _post(world, "/v1/keys/revoke", stranger, "rival").status_code == 403
    r = _post(world, "/v1/keys/revoke", sign_statement(rst, world.keys["nmpa"]), "nmpa")
    assert r.status_code == 201
    keys = world.client.get("/v1/orgs/huaxin", headers=world.auth("huaxin")).json()["keys"]
    assert (
        next(k for k in keys if k["name"] == "huaxin/k1")["revoked_at_index"] == r.json()["index"]
    )
    wire = world.sign("huaxin", [commission([sgtin(2)])], advance=False)
    assert (
        world.client.post("/v1/captures", json=wire, headers=world.auth("huaxin")).status_code
        == 403
    )


def test_product_registration_by_owner_only(world: World) -> None:
    pst = product_statement(
        gtin="06901234000054", owner="huaxin", generic_name="布洛芬缓释胶囊",
        category="drug", rx=False, storage_max_c=30, signer="huaxin/k1", created=CREATED,
    )  # fmt: skip
    r = _post(world, "/v1/products", sign_statement(pst, world.keys["huaxin"]), "huaxin")
    assert r.status_code == 201, r.text
    # The rival cannot register a GTIN under huaxin's company prefix, nor sign as huaxin.
    theft = product_statement(
        gtin="06901234000061", owner="rival", generic_name="假药", category="drug", rx=False,
        signer="rival/k1", created=CREATED,
    )  # fmt: skip
    r = _post(world, "/v1/products", sign_statement(theft, world.keys["rival"]), "rival")
    assert r.status_code == 403
    r = _post(world, "/v1/products", sign_statement(pst, world.keys["huaxin"]), "rival")
    assert r.status_code == 403


def test_statement_errors(world: World) -> None:
    r = world.client.post(
        "/v1/orgs", json={"statement": "!!", "signature": "AA=="}, headers=world.auth("nmpa")
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    pst = product_statement(
        gtin="06901234000054", owner="huaxin", generic_name="x", category="drug", rx=False,
        signer="huaxin/k1", created=CREATED,
    )  # fmt: skip
    # A product statement sent to the org endpoint is refused.
    r = _post(world, "/v1/orgs", sign_statement(pst, world.keys["huaxin"]), "nmpa")
    assert r.status_code == 400
