"""Log endpoints: checkpoint, keys, inclusion/consistency proofs, entries — verified with
ledger.merkle and ledger.note against the signed checkpoint."""

from __future__ import annotations

import base64

from api_world import World, commission, sgtin

from ledger import merkle
from ledger.note import Verifier, verify_checkpoint


def _checkpoint(w: World):
    r = w.client.get("/v1/log/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    keys = w.client.get("/v1/log/keys").json()
    verifier = Verifier.parse_vkey(keys["log_vkey"])
    return verify_checkpoint(r.content, [verifier]), keys


def test_checkpoint_verifies_with_published_key(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(1), sgtin(2)])])
    cp, keys = _checkpoint(world)
    assert keys["origin"] == cp.origin
    assert cp.size == world.size()


def test_inclusion_proofs_verify_against_signed_root(world: World) -> None:
    world.capture("huaxin", [commission([sgtin(i)]) for i in range(5)])
    cp, _ = _checkpoint(world)
    entries = world.client.get(f"/v1/log/entries?start=0&end={cp.size}").json()["entries"]
    assert [e["index"] for e in entries] == list(range(cp.size))
    for e in entries:
        leaf = base64.b64decode(e["leaf"])
        r = world.client.get(f"/v1/log/proof/inclusion?index={e['index']}&size={cp.size}")
        assert r.status_code == 200, r.text
        proof = [base64.b64decode(h) for h in r.json()["proof"]]
        merkle.verify_inclusion(merkle.leaf_hash(leaf), e["index"], cp.size, proof, cp.root_hash)


def test_consistency_proof_between_checkpoints(world: World) -> None:
    old, _ = _checkpoint(world)
    world.capture("huaxin", [commission([sgtin(9)])])
    new, _ = _checkpoint(world)
    r = world.client.get(f"/v1/log/proof/consistency?old={old.size}&new={new.size}")
    assert r.status_code == 200
    proof = [base64.b64decode(h) for h in r.json()["proof"]]
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)


def test_proof_errors_are_problems(world: World) -> None:
    size = world.size()
    for url in (
        f"/v1/log/proof/inclusion?index={size}&size={size}",
        f"/v1/log/proof/inclusion?index=0&size={size + 5}",
        "/v1/log/proof/consistency?old=5&new=2",
        "/v1/log/entries?start=3&end=1",
        "/v1/log/proof/inclusion?index=-1&size=1",
    ):
        r = world.client.get(url)
        assert r.status_code in (400, 404, 422), url
        assert r.headers["content-type"] == "application/problem+json"


def test_entries_are_capped(world: World) -> None:
    r = world.client.get("/v1/log/entries?start=0&end=100000")
    assert r.status_code == 200
    assert len(r.json()["entries"]) == world.size()
