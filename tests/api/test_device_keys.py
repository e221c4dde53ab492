"""Device keys registered by the device itself (spec §11.2) and revoked by their own org.

A scanner creates its Ed25519 key and posts a ``yima.key/v1`` statement signed by that new key
(proof of possession) to ``/v1/orgs/{org}/keys`` with its org's bearer token. The
regulator-signed path of spec §8.3 stays as it was (tests/api/test_registry_api.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from api_world import CREATED, World, commission, enc, seed, sgtin

from api.statements import key_statement, revoke_statement, sign_statement
from ledger.audit import AuditReport, audit
from ledger.bundle import verify_bundle
from ledger.capture import build_capture, to_wire
from ledger.errors import AuditFailure, SignatureError
from ledger.note import Signer, Verifier
from ledger.signing import PrivateKey
from scanner.keys import DeviceKey
from scanner.keys import key_statement as device_key_statement


def _device(org: str, device: str) -> tuple[str, PrivateKey]:
    return f"{org}/{device}", seed(f"device {org}/{device}")


def _self_signed(org: str, name: str, key: PrivateKey) -> dict[str, str]:
    stmt = key_statement(
        org=org, name=name, public_key=key.public_key, signer=name, created=CREATED
    )
    return sign_statement(stmt, key).to_wire()


def _post_key(world: World, path_org: str, body: dict[str, Any], token_org: str) -> Any:
    return world.client.post(f"/v1/orgs/{path_org}/keys", json=body, headers=world.auth(token_org))


def _capture(world: World, org: str, producer: str, key: PrivateKey, seq: int = 0) -> Any:
    cap = build_capture(
        key, producer=producer, seq=seq, prev=None, events=[commission([sgtin(500 + seq)])],
        created=CREATED,
    )  # fmt: skip
    return world.client.post("/v1/captures", json=to_wire(cap), headers=world.auth(org))


def test_device_self_registration_is_logged_and_signs_captures(world: World) -> None:
    name, key = _device("huaxin", "line1")
    body = _self_signed("huaxin", name, key)
    size = world.size()
    r = _post_key(world, "huaxin", body, "huaxin")
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "key" and r.json()["index"] == size
    # Logged as a key leaf carrying the exact self-signed statement.
    leaf = world.client.get(f"/v1/log/entries?start={size}&end={size + 1}").json()["entries"][0]
    logged = json.loads(base64.b64decode(leaf["leaf"]))
    assert logged["kind"] == "key" and logged["signer"] == name
    assert logged["statement"] == body["statement"] and logged["signature"] == body["signature"]
    # Listed with the org's keys, valid from its entry.
    keys = world.client.get("/v1/orgs/huaxin", headers=world.auth("huaxin")).json()["keys"]
    mine = next(k for k in keys if k["name"] == name)
    assert mine["valid_from_index"] == size and mine["revoked_at_index"] is None
    # The device now signs captures for its org.
    r = _capture(world, "huaxin", name, key)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "accepted"


def test_scanner_key_statement_is_accepted(world: World) -> None:
    """The exact body `yima-scan init` sends (scanner.keys) is what the service accepts."""
    name, key = _device("ph1", "till-1")
    body = device_key_statement(DeviceKey(name, key), created="2026-12-01T08:00:00Z")
    r = _post_key(world, "ph1", body, "ph1")
    assert r.status_code == 201, r.text


def test_self_registration_refusals(world: World) -> None:
    name, key = _device("huaxin", "line2")
    body = _self_signed("huaxin", name, key)
    # (a) the token must belong to the org: another org's token, even a regulator's, fails.
    assert _post_key(world, "huaxin", body, "rival").status_code == 403
    assert _post_key(world, "huaxin", body, "nmpa").status_code == 403
    # The statement must be for the org of the path.
    assert _post_key(world, "rival", body, "rival").status_code == 400
    # (b) name must be "{org}/…" of the statement's org (the parser refuses otherwise).
    stmt = key_statement(
        org="huaxin", name=name, public_key=key.public_key, signer=name, created=CREATED
    )
    foreign = sign_statement({**stmt, "name": "rival/x", "signer": "rival/x"}, key).to_wire()
    assert _post_key(world, "huaxin", foreign, "huaxin").status_code == 422
    # (d) key_id must be the C2SP key ID of (name, public key).
    wrong_id = sign_statement({**stmt, "key_id": "00000000"}, key).to_wire()
    assert _post_key(world, "huaxin", wrong_id, "huaxin").status_code == 422
    # (e) proof of possession: signed by another key than the one registered -> 403.
    other = seed("somebody else")
    theft = sign_statement(stmt, other).to_wire()
    assert _post_key(world, "huaxin", theft, "huaxin").status_code == 403
    # (c) signer != name and not a registered key: no current key verifies it -> 403.
    by_org = sign_statement({**stmt, "signer": "huaxin/line9"}, key).to_wire()
    assert _post_key(world, "huaxin", by_org, "huaxin").status_code == 403
    # Nothing of the above was logged; the good one is, once.
    size = world.size()
    assert _post_key(world, "huaxin", body, "huaxin").status_code == 201
    assert world.size() == size + 1
    assert _post_key(world, "huaxin", body, "huaxin").status_code == 409
    # Someone else's public key cannot be registered under a new name (no private key).
    stolen = key_statement(
        org="huaxin", name="huaxin/copy", public_key=key.public_key, signer="huaxin/copy",
        created=CREATED,
    )  # fmt: skip
    forged = sign_statement(stolen, other).to_wire()
    assert _post_key(world, "huaxin", forged, "huaxin").status_code == 403


def test_regulator_devices_cannot_self_register(world: World) -> None:
    """Spec §11.2 step 3f: a regulator key signs registry statements, so a token cannot mint
    one; nothing is logged. The regulator-signed path still registers it."""
    name, key = _device("nmpa", "desk1")
    body = _self_signed("nmpa", name, key)
    size = world.size()
    r = _post_key(world, "nmpa", body, "nmpa")
    assert r.status_code == 403, r.text
    assert "regulator" in r.json()["detail"]
    assert world.size() == size
    kst = key_statement(
        org="nmpa", name=name, public_key=key.public_key, signer="nmpa/k1", created=CREATED
    )
    signed = sign_statement(kst, world.keys["nmpa"]).to_wire()
    assert _post_key(world, "nmpa", signed, "nmpa").status_code == 201


def test_regulator_signed_key_still_accepted(world: World) -> None:
    new = seed("huaxin-reg")
    kst = key_statement(
        org="huaxin", name="huaxin/k7", public_key=new.public_key, signer="nmpa/k1",
        created=CREATED,
    )  # fmt: skip
    body = sign_statement(kst, world.keys["nmpa"]).to_wire()
    # Regulator-signed needs a regulator token; the org's own token is not enough for it.
    assert _post_key(world, "huaxin", body, "huaxin").status_code == 403
    assert _post_key(world, "huaxin", body, "nmpa").status_code == 201


def _revoke(world: World, org: str, kid: str, signer: str, key: PrivateKey, token: str) -> Any:
    rst = revoke_statement(org=org, key_id_hex=kid, reason="lost", signer=signer, created=CREATED)
    return world.client.post(
        "/v1/keys/revoke", json=sign_statement(rst, key).to_wire(), headers=world.auth(token)
    )


def test_org_revokes_its_own_device_keys(world: World) -> None:
    d1, k1 = _device("huaxin", "line1")
    d2, k2 = _device("huaxin", "line2")
    for name, key in ((d1, k1), (d2, k2)):
        assert _post_key(world, "huaxin", _self_signed("huaxin", name, key), "huaxin").status_code
    kid1 = DeviceKey(d1, k1).key_id
    kid2 = DeviceKey(d2, k2).key_id
    # Another org cannot revoke huaxin's device key, with its own key or token.
    assert (
        _revoke(world, "huaxin", kid1, "rival/k1", world.keys["rival"], "rival").status_code == 403
    )
    assert _revoke(world, "huaxin", kid1, d1, k1, "rival").status_code == 403
    # A device revokes itself (e.g. retired), with the org token.
    r = _revoke(world, "huaxin", kid1, d1, k1, "huaxin")
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "key-revoke"
    assert _capture(world, "huaxin", d1, k1).status_code == 403
    # A revoked key cannot sign anything more, not even a revocation.
    assert _revoke(world, "huaxin", kid2, d1, k1, "huaxin").status_code == 403
    # A lost device is revoked with another current key of the org (here its k1).
    r = _revoke(world, "huaxin", kid2, "huaxin/k1", world.keys["huaxin"], "huaxin")
    assert r.status_code == 201, r.text
    assert _capture(world, "huaxin", d2, k2).status_code == 403
    keys = world.client.get("/v1/orgs/huaxin", headers=world.auth("huaxin")).json()["keys"]
    revoked = {k["name"]: k["revoked_at_index"] for k in keys}
    assert revoked[d1] is not None and revoked[d2] == r.json()["index"]
    # Revoking twice is a conflict; re-registering a revoked key too.
    assert (
        _revoke(world, "huaxin", kid2, "huaxin/k1", world.keys["huaxin"], "huaxin").status_code
        == 409
    )
    assert _post_key(world, "huaxin", _self_signed("huaxin", d2, k2), "huaxin").status_code == 409


def _audit(world: World, *, strict: bool = False) -> AuditReport:
    """The full audit (spec §10.5-10.8) of the service's log with public keys only."""
    size = world.size()
    entries = world.client.get(f"/v1/log/entries?start=0&end={size}").json()["entries"]
    note = world.client.get("/v1/log/checkpoint").content
    log_vkey = world.client.get("/v1/log/keys").json()["log_vkey"]
    root = Verifier.parse_vkey(Signer("nmpa/k1", world.keys["nmpa"]).vkey())
    return audit(
        [(e["index"], base64.b64decode(e["leaf"]), None) for e in entries],
        [(size, note)],
        log_verifiers=[Verifier.parse_vkey(log_vkey)],
        trusted_regulators=[root],
        require_regulator_keys=strict,
    )


def test_audit_accepts_self_registered_device_keys(world: World) -> None:
    name, key = _device("huaxin", "line1")
    r = _post_key(world, "huaxin", _self_signed("huaxin", name, key), "huaxin")
    assert r.status_code == 201
    key_index = r.json()["index"]
    assert _capture(world, "huaxin", name, key).status_code == 200
    report = _audit(world)
    assert report.self_registered_keys == 1 and report.replayed >= 1
    # A verifier that wants every key attested by a regulator refuses it, at its entry.
    with pytest.raises(AuditFailure) as info:
        _audit(world, strict=True)
    assert (info.value.reason, info.value.index) == ("statement_signature", key_index)
    assert "self-registered" in str(info.value)


def test_audit_accepts_device_key_revocations(world: World) -> None:
    """Both revocations the service accepts (spec §11.2 step 4) pass the audit too."""
    d1, k1 = _device("huaxin", "line1")
    d2, k2 = _device("huaxin", "line2")
    for name, key in ((d1, k1), (d2, k2)):
        assert _post_key(world, "huaxin", _self_signed("huaxin", name, key), "huaxin").status_code
    assert _capture(world, "huaxin", d1, k1).status_code == 200
    # The device revokes itself; another current key of the org revokes the lost one.
    assert _revoke(world, "huaxin", DeviceKey(d1, k1).key_id, d1, k1, "huaxin").status_code == 201
    r = _revoke(
        world, "huaxin", DeviceKey(d2, k2).key_id, "huaxin/k1", world.keys["huaxin"], "huaxin"
    )
    assert r.status_code == 201
    report = _audit(world)
    assert report.self_registered_keys == 2


def test_offline_bundle_of_a_device_signed_item(world: World) -> None:
    name, key = _device("huaxin", "line1")
    r = _post_key(world, "huaxin", _self_signed("huaxin", name, key), "huaxin")
    assert r.status_code == 201
    key_index = r.json()["index"]
    assert _capture(world, "huaxin", name, key).status_code == 200
    data = world.client.get(
        f"/v1/items/{enc(sgtin(500))}/bundle",
        headers=world.auth("huaxin"),
    ).content
    keys = world.client.get("/v1/log/keys").json()
    policy: dict[str, Any] = {
        "log_verifiers": [Verifier.parse_vkey(keys["log_vkey"])],
        "trusted_regulators": [Verifier.parse_vkey(Signer("nmpa/k1", world.keys["nmpa"]).vkey())],
    }
    report = verify_bundle(data, **policy, code=sgtin(500))
    assert report.self_registered_keys == 1 and report.state is not None
    with pytest.raises(SignatureError, match=f"entry {key_index}: .*self-registered"):
        verify_bundle(data, **policy, require_regulator_keys=True)
