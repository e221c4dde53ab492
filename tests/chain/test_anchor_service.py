"""Anchoring from the service: ``yima anchor``, the anchors table, the background anchorer,
and ``yima audit --db --rpc`` — against anvil and the simulated chain."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api_world import (
    ORIGIN,
    FakeClock,
    World,
    commission,
    register_world,
    seed,
    sgtin,
)

from api.app import create_app
from api.cli import app as cli
from api.services.anchoring import anchor_latest
from api.settings import Settings
from api.store.anchors import CONFIRMED, PENDING, list_anchors
from contracts.anchor import AnchorClient, RetryPolicy
from contracts.anvil import AnvilNode
from ledger.note import Checkpoint, Signer

LOG = Signer(ORIGIN, seed("log"))
ROOT = Signer("nmpa/k1", seed("nmpa"))
runner = CliRunner()


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'yima.db'}",
        origin=ORIGIN,
        data_dir=tmp_path,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    app = create_app(_settings(tmp_path), clock=clock, log_signer=LOG)
    with TestClient(app) as client:
        w = World(client, app.state.container, clock)
        register_world(w)
        w.capture("huaxin", [commission([sgtin(1)])])
        yield w


def _url(w: World) -> str:
    return str(w.container.settings.database_url)


def _keys(w: World, tmp_path: Path) -> Path:
    keys = w.client.get("/v1/log/keys").json() | {"regulators": [ROOT.vkey()]}
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys))
    return path


def test_anchor_latest_is_shown(client: AnchorClient, world: World) -> None:
    done, pending = anchor_latest(world.container.store, client)
    assert pending == 0 and len(done) == 1
    a = done[0]
    assert a.size == world.size() and a.simulated == client.is_simulated
    (row,) = list_anchors(world.container.engine)
    assert row.status == CONFIRMED and row.tx_hash == a.tx_hash and row.block == a.block_number
    client.verify_anchor(row.anchor(), Checkpoint(a.origin, a.size, a.root))
    header = world.client.get("/v1/log/checkpoint").headers["Yima-Anchor"]
    sim = "true" if client.is_simulated else "false"
    assert header == (
        f"chain={a.chain_id};contract={a.contract};tx={a.tx_hash};block={a.block_number};"
        f"size={a.size};simulated={sim}"
    )
    listed = world.client.get("/v1/log/anchors").json()["anchors"]
    assert [x["tx_hash"] for x in listed] == [a.tx_hash]
    assert listed[0]["chain"].startswith("SIMULATED") == client.is_simulated
    # Nothing new: a second run sends nothing and adds no row.
    assert anchor_latest(world.container.store, client) == ([], 0)
    assert len(list_anchors(world.container.engine, status=None)) == 1
    assert client.count(ORIGIN) == 1


@pytest.mark.chain
def test_rerun_after_timeout_neither_loses_nor_duplicates(
    anvil_node: AnvilNode, anvil_client: AnchorClient, world: World
) -> None:
    slow = AnchorClient.rpc(
        anvil_node.url,
        key=anvil_node.private_keys[0],
        contract_address=anvil_client.contract_address,
        retry=RetryPolicy(attempts=2, initial_delay=0.0, receipt_timeout=0.3),
    )
    engine = world.container.engine
    w3 = anvil_client.w3
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        done, pending = anchor_latest(world.container.store, slow)
        assert done == [] and pending == 1
        (row,) = list_anchors(engine, status=PENDING)
        assert row.tx_hash is not None and row.attempts == 1  # hash stored before sending
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    # The re-run finds the mined transaction instead of sending a second one.
    done, pending = anchor_latest(world.container.store, slow)
    assert pending == 0 and [a.tx_hash for a in done] == [row.tx_hash]
    assert anvil_client.count(ORIGIN) == 1
    rows = list_anchors(engine, status=None)
    assert [(r.status, r.tx_hash) for r in rows] == [(CONFIRMED, row.tx_hash)]


@pytest.mark.chain
def test_cli_anchor_and_audit_against_anvil(
    anvil_node: AnvilNode, anvil_client: AnchorClient, world: World, tmp_path: Path
) -> None:
    key_file = tmp_path / "publisher.key"
    key_file.write_text(anvil_node.private_keys[0])
    os.chmod(key_file, 0o600)
    args = ["anchor", "--db", _url(world), "--rpc", anvil_node.url]
    args += ["--contract", anvil_client.contract_address, "--key-file", str(key_file)]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output + r.stderr
    assert f"chain {anvil_node.chain_id}: {ORIGIN} size {world.size()}" in r.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "nothing new to anchor" in again.output
    assert anvil_client.count(ORIGIN) == 1

    keys = _keys(world, tmp_path)
    audit = ["audit", "--db", _url(world), "--keys", str(keys), "--rpc", anvil_node.url]
    ok = runner.invoke(cli, audit)
    assert ok.exit_code == 0, ok.output + ok.stderr
    assert "anchor on chain: chain" in ok.output and "1 anchors" in ok.output
    # A stored anchor row with another root is refused (by the chain and by the tree).
    from sqlalchemy import update

    from api.store import tables as t

    with world.container.engine.begin() as conn:
        conn.execute(update(t.anchors).values(root=b"\x05" * 32))
    bad = runner.invoke(cli, audit)
    assert bad.exit_code == 1 and "anchor" in bad.output + bad.stderr
    no_rpc = runner.invoke(cli, audit[:-2])
    assert no_rpc.exit_code == 1 and "anchor_root" in no_rpc.output + no_rpc.stderr


def test_cli_anchor_simulated(world: World) -> None:
    r = runner.invoke(cli, ["anchor", "--db", _url(world), "--simulated"])
    assert r.exit_code == 0, r.output + r.stderr
    assert r.output.startswith("anchored: SIMULATED chain")
    (row,) = list_anchors(world.container.engine)
    assert row.simulated


def test_background_anchorer_starts_and_stops_with_the_app(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    settings = _settings(tmp_path, anchor_cadence_s=0.2, anchor_simulated=True)
    app = create_app(settings, clock=clock, log_signer=LOG)
    with TestClient(app) as client:
        c = app.state.container
        assert any(type(b).__name__ == "Anchorer" for b in c.background)
        w = World(client, c, clock)
        register_world(w)
        deadline = time.monotonic() + 20
        anchors: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            anchors = client.get("/v1/log/anchors").json()["anchors"]
            if anchors and anchors[0]["size"] == w.size():
                break
            time.sleep(0.1)
        assert anchors and anchors[0]["size"] == w.size() and anchors[0]["simulated"] is True
        assert "simulated=true" in client.get("/v1/log/checkpoint").headers["Yima-Anchor"]
    assert c.background == []
