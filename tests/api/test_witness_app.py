"""The ``yima witness serve`` app: c2sp.org/tlog-witness over HTTP with atomic persistence."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.witness_app import (
    SIZE_MEDIA_TYPE,
    WitnessConfig,
    WitnessStore,
    create_witness_app,
    init_witness,
)
from ledger.merkle import MemoryHashStore, leaf_hash
from ledger.note import Checkpoint, Signer, Verifier, verify_checkpoint_witnessed
from ledger.signing import PrivateKey
from ledger.witness import format_add_checkpoint

ORIGIN = "yima.example/log/app"
LOG = Signer(ORIGIN, PrivateKey.from_seed(hashlib.sha256(b"log").digest()))
NOW = 1_767_225_600


def tree(n: int, tag: bytes = b"") -> MemoryHashStore:
    s = MemoryHashStore()
    s.append([leaf_hash(tag + i.to_bytes(4, "big")) for i in range(n)])
    return s


def note(s: MemoryHashStore, size: int, signer: Signer = LOG) -> bytes:
    return Checkpoint(ORIGIN, size, s.root(size)).sign([signer]).serialize()


def body(s: MemoryHashStore, old: int, new: int, signer: Signer = LOG) -> bytes:
    proof = s.consistency_proof(old, new) if old > 0 else []
    return format_add_checkpoint(old, proof, note(s, new, signer))


@pytest.fixture
def config(tmp_path: Path) -> WitnessConfig:
    path, _ = init_witness(tmp_path / "w", "witness.example/w1", {ORIGIN: [LOG.vkey()]})
    return WitnessConfig.load(path)


def client(config: WitnessConfig) -> TestClient:
    return TestClient(create_witness_app(config, clock=lambda: NOW))


def test_happy_path_returns_a_cosignature_that_verifies(config: WitnessConfig) -> None:
    s = tree(10)
    r = client(config).post("/add-checkpoint", content=body(s, 0, 10))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("— witness.example/w1 ")
    witness = Verifier.parse_vkey(client(config).get("/vkey").text.strip())
    cp, cosigs = verify_checkpoint_witnessed(
        note(s, 10) + r.content, [LOG.verifier()], [witness], 1, origin=ORIGIN
    )
    assert cp.size == 10 and cosigs[0].timestamp == NOW


def test_state_survives_a_restart(config: WitnessConfig) -> None:
    s = tree(30)
    assert client(config).post("/add-checkpoint", content=body(s, 0, 10)).status_code == 200
    # a new process (new app, same state file) remembers size 10
    again = client(config)
    r = again.post("/add-checkpoint", content=body(s, 0, 30))
    assert (r.status_code, r.text, r.headers["content-type"]) == (409, "10\n", SIZE_MEDIA_TYPE)
    assert again.post("/add-checkpoint", content=body(s, 10, 30)).status_code == 200
    assert WitnessStore(config.state_file).latest(ORIGIN) is not None
    assert again.get("/latest", params={"origin": ORIGIN}).text.splitlines()[1] == "30"


def test_smaller_checkpoint_is_refused(config: WitnessConfig) -> None:
    s = tree(20)
    c = client(config)
    assert c.post("/add-checkpoint", content=body(s, 0, 20)).status_code == 200
    stale = c.post("/add-checkpoint", content=body(s, 5, 15))
    assert (stale.status_code, stale.text) == (409, "20\n")
    rollback = c.post("/add-checkpoint", content=format_add_checkpoint(20, [], note(s, 15)))
    assert rollback.status_code == 400


def test_forked_checkpoint_is_422_and_kept_as_evidence(config: WitnessConfig) -> None:
    honest, fork = tree(10), tree(14, b"fork")
    c = client(config)
    assert c.post("/add-checkpoint", content=body(honest, 0, 10)).status_code == 200
    r = c.post("/add-checkpoint", content=body(fork, 10, 14))
    assert r.status_code == 422
    same_size = c.post(
        "/add-checkpoint", content=format_add_checkpoint(10, [], note(tree(10, b"x"), 10))
    )
    assert same_size.status_code == 409
    evidence = WitnessStore(config.state_file).evidence()
    assert [e["status"] for e in evidence] == [422, 409]
    # the fork did not move the state
    assert c.post("/add-checkpoint", content=body(honest, 10, 10)).status_code == 200


def test_unknown_origin_and_bad_signature(config: WitnessConfig) -> None:
    other = Signer("elsewhere.example/log", LOG.private_key)
    s = tree(3)
    unknown = format_add_checkpoint(
        0, [], Checkpoint(other.name, 3, s.root(3)).sign([other]).serialize()
    )
    c = client(config)
    assert c.post("/add-checkpoint", content=unknown).status_code == 404
    impostor = Signer(ORIGIN, PrivateKey.from_seed(b"\x07" * 32))
    assert c.post("/add-checkpoint", content=body(s, 0, 3, impostor)).status_code == 403
    assert c.post("/add-checkpoint", content=b"garbage").status_code == 400
    assert WitnessStore(config.state_file).latest(ORIGIN) is None


def test_concurrent_requests_never_roll_back(config: WitnessConfig) -> None:
    s = tree(40)
    c = client(config)
    assert c.post("/add-checkpoint", content=body(s, 0, 10)).status_code == 200
    results: list[int] = []

    def submit(new: int) -> None:
        results.append(c.post("/add-checkpoint", content=body(s, 10, new)).status_code)

    threads = [threading.Thread(target=submit, args=(n,)) for n in (20, 30, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # exactly one of the three extensions from 10 wins; the others see 409
    assert sorted(results) == [200, 409, 409]
    conn = sqlite3.connect(config.state_file)
    (size,) = conn.execute("SELECT size FROM witness_state").fetchone()
    conn.close()
    assert size in (20, 30, 40)


def test_init_never_overwrites_a_key(tmp_path: Path) -> None:
    init_witness(tmp_path, "w", {ORIGIN: [LOG.vkey()]})
    with pytest.raises(FileExistsError):
        init_witness(tmp_path, "w", {ORIGIN: [LOG.vkey()]})
    assert (tmp_path / "witness.key").stat().st_mode & 0o777 == 0o600
