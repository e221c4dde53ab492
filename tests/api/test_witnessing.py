"""The log sends its checkpoints to two real witness apps and publishes their cosignatures.

The witnesses are the real ``create_witness_app`` (their own SQLite state), reached through
ASGI test clients injected into the log's :class:`api.services.witnessing.Witnessing`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api_world import (
    ORIGIN,
    FakeClock,
    World,
    commission,
    register_world,
    seed,
    sgtin,
)
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import build_container, create_app
from api.cli import app as cli
from api.cli_trust import read_export
from api.container import Container
from api.settings import Settings, WitnessEndpoint
from api.witness_app import WitnessConfig, WitnessStore, create_witness_app, init_witness
from ledger.audit import audit
from ledger.errors import AuditFailure, PolicyError
from ledger.note import Signer, Verifier, verify_checkpoint_witnessed
from ledger.witness import format_add_checkpoint

NOW = 1_796_000_000
LOG = Signer(ORIGIN, seed("log"))
ROOT = Signer("nmpa/k1", seed("nmpa"))


@dataclass
class Witnessed:
    world: World
    configs: list[WitnessConfig]
    clients: dict[str, TestClient]

    @property
    def verifiers(self) -> list[Verifier]:
        return [Verifier.parse_vkey(c.signer().vkey()) for c in self.configs]


def make_witnesses(tmp_path: Path, n: int = 2) -> list[WitnessConfig]:
    out = []
    for i in range(1, n + 1):
        path, _ = init_witness(tmp_path / f"w{i}", f"witness{i}.test", {ORIGIN: [LOG.vkey()]})
        out.append(WitnessConfig.load(path))
    return out


def start_log(
    url: str,
    tmp_path: Path,
    clock: FakeClock,
    configs: list[WitnessConfig],
    clients: dict[str, httpx.Client],
) -> tuple[TestClient, Container]:
    settings = Settings(
        database_url=url,
        origin=ORIGIN,
        data_dir=tmp_path,
        witnesses=tuple(
            WitnessEndpoint(name=c.name, url=f"http://{c.name}", vkey=c.signer().vkey())
            for c in configs
        ),
        witness_cadence_s=3600,
    )
    container = build_container(settings, clock=clock, log_signer=LOG)
    assert container.witnessing is not None
    container.witnessing.clients.update(clients)
    return TestClient(create_app(settings, container=container)), container


@pytest.fixture
def witnessed(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Witnessed]:
    configs = make_witnesses(tmp_path)
    clients = {c.name: TestClient(create_witness_app(c, clock=lambda: NOW)) for c in configs}
    client, container = start_log(database_url, tmp_path, clock, configs, dict(clients))
    with client:
        # Passes run by hand here (deterministic); one test restarts the background thread.
        container.stop_background()
        w = World(client, container, clock)
        register_world(w)
        yield Witnessed(w, configs, clients)
    container.engine.dispose()


def _pass(c: Container) -> dict[str, str]:
    assert c.witnessing is not None
    return {o.witness: o.status for o in c.witnessing.run_once()}


def test_checkpoint_is_cosigned_2_of_2(witnessed: Witnessed) -> None:
    w = witnessed.world
    w.capture("huaxin", [commission([sgtin(1)])])
    _pass(w.container)
    r = w.client.get("/v1/log/checkpoint")
    assert r.status_code == 200
    cp, cosigs = verify_checkpoint_witnessed(
        r.content, [LOG.verifier()], witnessed.verifiers, 2, origin=ORIGIN
    )
    assert cp.size == w.size()
    assert sorted(c.name for c in cosigs) == ["witness1.test", "witness2.test"]
    assert {c.timestamp for c in cosigs} == {NOW}
    # The log-signed part is the exact stored note: both parts stay verifiable.
    stored = w.container.store.latest_checkpoint()
    assert stored is not None and r.content.startswith(stored.note)
    keys = w.client.get("/v1/log/keys").json()
    assert keys["quorum"] == 2
    assert keys["witnesses"] == [c.signer().vkey() for c in witnessed.configs]
    status = w.client.get("/v1/log/witnesses").json()
    assert [x["last"]["status"] for x in status["witnesses"]] == ["cosigned", "cosigned"]

    # The next checkpoint goes with a consistency proof from the size each witness has.
    old = cp.size
    w.capture("huaxin", [commission([sgtin(2)])])
    assert _pass(w.container) == {"witness1.test": "cosigned", "witness2.test": "cosigned"}
    assert _pass(w.container) == {"witness1.test": "skipped", "witness2.test": "skipped"}
    cp2, _ = verify_checkpoint_witnessed(
        w.client.get("/v1/log/checkpoint").content, [LOG.verifier()], witnessed.verifiers, 2
    )
    assert cp2.size > old
    for c in witnessed.configs:
        latest = WitnessStore(c.state_file).latest(ORIGIN)
        assert latest is not None and latest[0] == cp2.size


def test_one_witness_missing_fails_a_2_of_2_policy_but_not_the_capture(
    witnessed: Witnessed,
) -> None:
    w = witnessed.world
    assert w.container.witnessing is not None

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    good = w.container.witnessing.clients["witness2.test"]
    w.container.witnessing.clients["witness2.test"] = httpx.Client(
        transport=httpx.MockTransport(down)
    )
    body = w.capture("huaxin", [commission([sgtin(1)])])  # the capture is not affected
    assert body["results"][0]["status"] == "accepted"
    assert _pass(w.container) == {"witness1.test": "cosigned", "witness2.test": "failed"}
    note = w.client.get("/v1/log/checkpoint").content
    verify_checkpoint_witnessed(note, [LOG.verifier()], witnessed.verifiers, 1)
    with pytest.raises(PolicyError):
        verify_checkpoint_witnessed(note, [LOG.verifier()], witnessed.verifiers, 2)
    # The witness comes back: the next pass catches up.
    w.container.witnessing.clients["witness2.test"] = good
    assert _pass(w.container)["witness2.test"] == "cosigned"
    verify_checkpoint_witnessed(
        w.client.get("/v1/log/checkpoint").content, [LOG.verifier()], witnessed.verifiers, 2
    )


def test_409_from_the_witness_is_retried_from_its_size(witnessed: Witnessed) -> None:
    w = witnessed.world
    w.capture("huaxin", [commission([sgtin(1)])])
    _pass(w.container)
    # The log forgets what witness1 cosigned (e.g. a restored backup): it sends old 0, the
    # witness answers 409 with its size, the log retries once from there.
    from sqlalchemy import delete

    from api.store import tables as t

    with w.container.engine.begin() as conn:
        conn.execute(delete(t.cosignatures).where(t.cosignatures.c.witness == "witness1.test"))
    w.capture("huaxin", [commission([sgtin(2)])])
    assert _pass(w.container)["witness1.test"] == "cosigned"
    verify_checkpoint_witnessed(
        w.client.get("/v1/log/checkpoint").content, [LOG.verifier()], witnessed.verifiers, 2
    )


def test_post_commit_hook_wakes_the_background_pass(witnessed: Witnessed) -> None:
    import time

    w = witnessed.world
    w.container.start_background()
    w.capture("huaxin", [commission([sgtin(1)])])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(w.container.store.cosignatures(w.size())) == 2:
            break
        time.sleep(0.05)
    assert len(w.container.store.cosignatures(w.size())) == 2


def test_forked_log_is_refused_by_the_witness_and_flagged_by_the_audit(
    witnessed: Witnessed, tmp_path: Path, clock: FakeClock, database_url: str
) -> None:
    w = witnessed.world
    w.capture("huaxin", [commission([sgtin(1)])])
    _pass(w.container)
    size = w.size()

    # A second log under the same origin and key, same registry, different content.
    fork_url = f"sqlite:///{tmp_path / 'fork' / 'fork.db'}"
    fork_client, fork = start_log(
        fork_url, tmp_path / "fork", clock, witnessed.configs, dict(witnessed.clients)
    )
    with fork_client:
        fork.stop_background()
        f = World(fork_client, fork, clock)
        register_world(f)
        f.capture("huaxin", [commission([sgtin(99)])])
        assert f.size() == size
        fork_note = fork_client.get("/v1/log/checkpoint").content
        assert _pass(fork) == {"witness1.test": "failed", "witness2.test": "failed"}
        assert fork.witnessing is not None
        assert "HTTP 409" in fork.witnessing.last["witness1.test"].detail
    fork.engine.dispose()
    # Directly, too: same size, other root -> 409; and the witness keeps the evidence.
    r = witnessed.clients["witness1.test"].post(
        "/add-checkpoint", content=format_add_checkpoint(size, [], fork_note)
    )
    assert r.status_code == 409
    evidence = WitnessStore(witnessed.configs[0].state_file).evidence()
    assert evidence and evidence[-1]["status"] == 409

    # The audit, fed the log and both signed checkpoints, names the fork.
    entries = w.client.get(f"/v1/log/entries?start=0&end={size}").json()["entries"]
    honest = w.client.get("/v1/log/checkpoint").content
    with pytest.raises(AuditFailure) as err:
        audit(
            [(e["index"], base64.b64decode(e["leaf"]), None) for e in entries],
            [(size, honest), (size, fork_note)],
            log_verifiers=[LOG.verifier()],
            trusted_regulators=[ROOT.verifier()],
        )
    assert err.value.reason == "checkpoint_fork" and err.value.checkpoint == size

    # `yima audit` over an export with the forked checkpoint added.
    export = tmp_path / "export"
    # Quorum 0 here: only the newest checkpoints were sent to witnesses, and the audit applies
    # its policy to every stored checkpoint.
    keys = w.client.get("/v1/log/keys").json() | {"regulators": [ROOT.vkey()], "quorum": 0}
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys))
    runner = CliRunner()
    url = database_url
    r1 = runner.invoke(cli, ["export", str(export), "--db", url, "--keys", str(keys_file)])
    assert r1.exit_code == 0, r1.output
    _, cps, _ = read_export(export)
    assert any(b"\n\xe2\x80\x94 witness1.test " in n for _, n in cps), "cosignatures exported"
    with (export / "checkpoints.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"size": size, "note": fork_note.decode()}) + "\n")
    r2 = runner.invoke(cli, ["audit", "--dir", str(export), "--keys", str(keys_file)])
    assert r2.exit_code == 1
    assert f"checkpoint at size {size}: checkpoint_fork" in r2.output + r2.stderr
    # The honest log passes.
    r3 = runner.invoke(cli, ["audit", "--db", url, "--keys", str(keys_file)])
    assert r3.exit_code == 0, r3.output + r3.stderr
