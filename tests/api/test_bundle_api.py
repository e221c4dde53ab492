"""GET /v1/items/{code}/bundle: fetched through the API, verified offline with public keys.

The bundle is checked with only what ``/v1/log/keys`` publishes plus the regulator root key;
one flipped bit anywhere that matters is refused. One test adds two real witnesses (2-of-2)
and an anchor on the simulated chain.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from api_world import (
    DC,
    FACTORY,
    ORIGIN,
    PH1,
    World,
    commission,
    dispense,
    enc,
    pack,
    receive,
    seed,
    sgtin,
    ship,
    sscc,
    t,
    unpack,
)
from test_witnessing import Witnessed, _pass
from test_witnessing import witnessed as witnessed
from typer.testing import CliRunner

from api.cli import app as cli
from api.services.anchoring import anchor_latest
from contracts.anchor import AnchorClient
from ledger.bundle import parse_bundle, verify_bundle
from ledger.errors import LedgerError
from ledger.note import Signer, Verifier

ROOT = Signer("nmpa/k1", seed("nmpa"))
runner = CliRunner()


def journey(w: World) -> list[str]:
    packs = [sgtin(1), sgtin(2)]
    case = sscc(1)
    w.capture("huaxin", [commission(packs), pack(case, packs)])
    w.capture("huaxin", [ship([case], site=FACTORY, to=DC, time=t(2))])
    w.capture("dc", [receive([case], site=DC, time=t(3))])
    w.capture("dc", [ship([case], site=DC, to=PH1, time=t(4))])
    w.capture("ph1", [receive([case], site=PH1, time=t(5))])
    w.capture("ph1", [unpack(case, packs, site=PH1, time=t(5, 10))])
    w.capture("ph1", [dispense([packs[0]], site=PH1, time=t(6))])
    return packs


def keys_of(w: World) -> dict[str, object]:
    keys: dict[str, object] = w.client.get("/v1/log/keys").json()
    keys["regulators"] = [ROOT.vkey()]
    return keys


def verify(data: bytes, keys: dict[str, object], code: str | None = None):  # type: ignore[no-untyped-def]
    return verify_bundle(
        data,
        log_verifiers=[Verifier.parse_vkey(str(keys["log_vkey"]))],
        witness_verifiers=[Verifier.parse_vkey(v) for v in keys["witnesses"]],  # type: ignore[attr-defined]
        quorum=int(keys["quorum"]),  # type: ignore[call-overload]
        trusted_regulators=[ROOT.verifier()],
        origin=ORIGIN,
        code=code,
    )


def test_bundle_access_is_the_history_rule(world: World) -> None:
    packs = journey(world)
    url = f"/v1/items/{enc(packs[0])}/bundle"
    assert world.client.get(url).status_code == 401
    r = world.client.get(url, headers=world.auth("rival"))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    for org in ("ph1", "huaxin", "nmpa"):
        assert world.client.get(url, headers=world.auth(org)).status_code == 200, org
    # Exactly the /history rule, whoever asks.
    for org in ("huaxin", "dc", "ph1", "ph2", "rival", "nmpa"):
        h = world.client.get(f"/v1/items/{enc(packs[0])}/history", headers=world.auth(org))
        b = world.client.get(url, headers=world.auth(org))
        assert b.status_code == h.status_code, org
    r = world.client.get(f"/v1/items/{enc(sgtin(77))}/bundle", headers=world.auth("nmpa"))
    assert r.status_code == 404


def test_bundle_verifies_offline_and_one_bit_is_refused(world: World, tmp_path: Path) -> None:
    packs = journey(world)
    r = world.client.get(f"/v1/items/{enc(packs[0])}/bundle", headers=world.auth("ph1"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.yima.bundle.v1+json")
    data = r.content
    keys = keys_of(world)
    report = verify(data, keys, code=packs[0])
    assert report.verdict.code == "dispensed", report.verdict
    assert report.state is not None and report.state.dispense_count == 1
    steps = [e.event.get("bizStep") for e in report.events]
    assert steps[0] == "commissioning" and steps[-1] == "dispensing"
    assert "shipping" in steps and "receiving" in steps  # inherited from the case
    history = world.client.get(f"/v1/items/{enc(packs[0])}/history", headers=world.auth("ph1"))
    assert [e.index for e in report.events] == [e["index"] for e in history.json()["events"]]
    assert report.registry > 0 and report.anchor is None

    # The CLI, with the keys as /v1/log/keys serves them plus the regulator root.
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    (tmp_path / "b.json").write_bytes(data)
    ok = runner.invoke(
        cli, ["verify-bundle", str(tmp_path / "b.json"), "--keys", str(tmp_path / "keys.json")]
    )
    assert ok.exit_code == 0, ok.output + ok.stderr
    assert "verdict dispensed" in ok.output

    # One bit of one event leaf: its inclusion proof no longer holds.
    obj = json.loads(data)
    leaf = bytearray(base64.b64decode(obj["entries"][-1]["leaf"]))
    leaf[len(leaf) // 2] ^= 0x01
    obj["entries"][-1]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    bad = json.dumps(obj).encode()
    with pytest.raises(LedgerError):
        verify(bad, keys)
    (tmp_path / "bad.json").write_bytes(bad)
    refused = runner.invoke(
        cli, ["verify-bundle", str(tmp_path / "bad.json"), "--keys", str(tmp_path / "keys.json")]
    )
    assert refused.exit_code == 1 and "ProofError" in refused.output + refused.stderr
    # One bit of a proof hash, and one bit of the checkpoint's signature.
    obj = json.loads(data)
    h = bytearray(base64.b64decode(obj["entries"][0]["proof"][0]))
    h[0] ^= 0x80
    obj["entries"][0]["proof"][0] = base64.b64encode(bytes(h)).decode()
    with pytest.raises(LedgerError):
        verify(json.dumps(obj).encode(), keys)
    obj = json.loads(data)
    head, sig_line = obj["checkpoint"].rstrip("\n").rsplit("\n", 1)
    dash, name, sig = sig_line.split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 0x01
    obj["checkpoint"] = f"{head}\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(LedgerError):
        verify(json.dumps(obj).encode(), keys)
    # Asked about another pack, this bundle is no answer.
    with pytest.raises(LedgerError):
        verify(data, keys, code=packs[1])


def test_bundle_with_witnesses_and_anchor(witnessed: Witnessed) -> None:
    w = witnessed.world
    packs = journey(w)
    _pass(w.container)
    client = AnchorClient.simulated()
    done, pending = anchor_latest(w.container.store, client)
    assert len(done) == 1 and pending == 0
    anchored = done[0].size
    # A later capture: the bundle's checkpoint is newer than the anchor (consistency proof).
    w.capture("ph1", [dispense([packs[1]], site=PH1, time=t(7))])
    _pass(w.container)
    r = w.client.get(f"/v1/items/{enc(packs[0])}/bundle", headers=w.auth("ph1"))
    assert r.status_code == 200, r.text
    keys = keys_of(w)
    assert keys["quorum"] == 2 and len(keys["witnesses"]) == 2  # type: ignore[arg-type]
    report = verify(r.content, keys, code=packs[0])
    assert len(report.cosignatures) == 2
    assert report.anchor is not None and report.anchor["size"] == anchored
    assert report.anchor["simulated"] is True and report.checkpoint.size > anchored
    assert parse_bundle(r.content).anchor is not None
    # Checkpoint header and anchors list show the same anchor.
    cp = w.client.get("/v1/log/checkpoint")
    assert f"size={anchored};simulated=true" in cp.headers["Yima-Anchor"]
    assert f"tx={done[0].tx_hash}" in cp.headers["Yima-Anchor"]
    listed = w.client.get("/v1/log/anchors").json()["anchors"]
    assert [a["tx_hash"] for a in listed] == [done[0].tx_hash]
    assert listed[0]["chain"].startswith("SIMULATED")
    # A forged anchor root is refused offline.
    obj = json.loads(r.content)
    obj["anchor"]["root"] = "00" * 32
    with pytest.raises(LedgerError):
        verify(json.dumps(obj).encode(), keys)
