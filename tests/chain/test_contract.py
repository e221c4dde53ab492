"""CheckpointRegistry and the anchor client, on anvil (loopback) and on the simulated chain.

Covers docs/spec/09-anchoring.md: the contract rules (§9.2), anchoring (§9.3), nothing lost on
timeouts (§9.4), verification against the chain (§9.5) and the committed build (§9.6).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from contracts.anchor import (
    ARTIFACT_PATH,
    SIMULATED_LABEL,
    Anchor,
    AnchorClient,
    Anchorer,
    AnchorError,
    AnchorReverted,
    AnchorTimeout,
    ContractArtifact,
    MemoryPendingQueue,
    RetryPolicy,
    flush_pending,
    load_publisher_key,
)
from contracts.anvil import AnvilNode, start_anvil
from ledger.errors import HashMismatchError, IntegrityError
from ledger.note import Checkpoint

CONTRACTS = ARTIFACT_PATH.parents[1]
ORIGIN = "yima.example/log"


def cp(size: int, fill: int = 1, origin: str = ORIGIN) -> Checkpoint:
    """A checkpoint whose root is 32 bytes of ``fill``."""
    return Checkpoint(origin, size, bytes([fill]) * 32)


def backend(c: AnchorClient) -> str:
    return "simulated" if c.is_simulated else "anvil"


# -- §9.6 the committed artifact is what runs ------------------------------------------------


def test_deployed_code_equals_committed_artifact(client: AnchorClient) -> None:
    code = bytes(client.w3.eth.get_code(client.contract_address))
    artifact = json.loads(ARTIFACT_PATH.read_text())
    assert code.hex() == artifact["deployedBytecode"].removeprefix("0x")
    client.verify_code()


def test_artifact_settings_and_source_hash() -> None:
    a = ContractArtifact.load()
    assert a.compiler_version.startswith("0.8.37+")
    assert a.settings == {
        "evmVersion": "london",
        "metadata": {"bytecodeHash": "none"},
        "optimizer": {"enabled": True, "runs": 200},
    }
    src = (CONTRACTS / "src" / "CheckpointRegistry.sol").read_bytes()
    assert hashlib.sha256(src).hexdigest() == a.source_sha256, (
        "contracts/src/CheckpointRegistry.sol changed: run `make contracts` and commit the artifact"
    )


def _opcodes(code: bytes) -> list[int]:
    # Strip the CBOR metadata trailer (its length is in the last two bytes), then walk the
    # code skipping PUSH1..PUSH32 immediates.
    code = code[: len(code) - 2 - int.from_bytes(code[-2:], "big")]
    ops, i = [], 0
    while i < len(code):
        op = code[i]
        ops.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return ops


def test_artifact_has_no_push0() -> None:
    # London chains do not know PUSH0 (0x5f, Shanghai): it would make deployment fail there.
    a = ContractArtifact.load()
    for code in (a.bytecode, a.deployed_bytecode):
        assert 0x5F not in _opcodes(bytes.fromhex(code.removeprefix("0x")))


def test_artifact_rebuild_is_identical(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (CONTRACTS / "node_modules" / "solc").is_dir():
        reason = "node or contracts/node_modules/solc absent (run `make chain-deps`)"
        if os.environ.get("REQUIRE_CHAIN") == "1":
            pytest.fail(f"REQUIRE_CHAIN=1 but {reason}")
        pytest.skip(f"{reason} (set REQUIRE_CHAIN=1 to make this a failure)")
    out = tmp_path / "CheckpointRegistry.json"
    subprocess.run(
        [node, "build.mjs", "--out", str(out)], cwd=CONTRACTS, check=True, capture_output=True
    )
    assert out.read_bytes() == ARTIFACT_PATH.read_bytes(), (
        "rebuilt artifact differs from the committed one: run `make contracts` and commit it"
    )


# -- §9.2 / §9.3 contract rules and anchoring -----------------------------------------------


def test_anchor_increasing_sizes(client: AnchorClient) -> None:
    anchors = [client.anchor(cp(s, fill=s % 256)) for s in (1, 5, 1000)]
    assert [a.index for a in anchors] == [0, 1, 2]
    assert [a.size for a in anchors] == [1, 5, 1000]
    assert anchors[2].root == bytes([1000 % 256]) * 32
    for a in anchors:
        assert a.chain_id == client.chain_id
        assert a.contract == client.contract_address
        assert a.origin == ORIGIN
        assert a.simulated is client.is_simulated
        assert a.tx_hash.startswith("0x") and len(a.tx_hash) == 66
    assert anchors[0].block_number < anchors[1].block_number < anchors[2].block_number
    assert client.count(ORIGIN) == 3
    latest = client.latest(ORIGIN)
    assert latest is not None
    assert (latest.size, latest.root, latest.index) == (1000, anchors[2].root, 2)
    assert latest.time == anchors[2].time > 0
    e = client.get(ORIGIN, 1)
    assert (e.size, e.root, e.index) == (5, bytes([5]) * 32, 1)
    # Origins are independent lists.
    other = client.anchor(cp(1, origin="other.example/log"))
    assert other.index == 0
    assert client.count("other.example/log") == 1
    assert client.count(ORIGIN) == 3


def test_refuses_equal_and_smaller_size(client: AnchorClient) -> None:
    client.anchor(cp(10))
    for size in (10, 3):
        with pytest.raises(AnchorReverted) as info:
            client.anchor(cp(size, fill=9))
        err = info.value
        assert err.error_name == "SizeNotIncreasing"
        assert err.error_args == {"last": 10, "given": size}
        assert f"already holds size 10 for this origin; size {size} is not larger" in str(err)
    # Size 0 is never accepted (nothing to anchor in an empty log).
    with pytest.raises(AnchorReverted, match="SizeNotIncreasing"):
        client.anchor(cp(0, origin="empty.example/log"))
    assert client.count(ORIGIN) == 1


def _second_account_client(client: AnchorClient, anvil: AnvilNode | None) -> AnchorClient:
    if anvil is not None:
        return AnchorClient.rpc(
            anvil.url, key=anvil.private_keys[1], contract_address=client.contract_address
        )
    tester = client.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    acct = Account.from_key(tester.backend.account_keys[1].to_bytes())
    return AnchorClient(
        client.w3, acct, contract_address=client.contract_address, is_simulated=True
    )


def test_non_publisher_refused_and_owner_manages_publishers(
    client: AnchorClient, request: pytest.FixtureRequest
) -> None:
    anvil = None if client.is_simulated else request.getfixturevalue("anvil_node")
    other = _second_account_client(client, anvil)
    assert not other.is_publisher(other.publisher)
    with pytest.raises(AnchorReverted) as info:
        other.anchor(cp(1))
    assert info.value.error_name == "NotPublisher"
    assert f"account {other.publisher} is not an authorised publisher" in str(info.value)
    # Only the owner manages publishers.
    with pytest.raises(AnchorReverted, match="NotOwner"):
        other.add_publisher(other.publisher)
    client.add_publisher(other.publisher)
    assert other.anchor(cp(1)).index == 0
    client.remove_publisher(other.publisher)
    with pytest.raises(AnchorReverted, match="NotPublisher"):
        other.anchor(cp(2))
    assert client.count(ORIGIN) == 1  # past entries stay


def test_reads_on_empty_origin(client: AnchorClient) -> None:
    assert client.latest("nobody.example/log") is None
    assert client.count("nobody.example/log") == 0
    with pytest.raises(AnchorReverted) as info:
        client.get("nobody.example/log", 0)
    assert info.value.error_name == "IndexOutOfRange"
    assert info.value.error_args == {"index": 0, "count": 0}


# -- §9.5 verification -----------------------------------------------------------------------


def test_verify_anchor(client: AnchorClient) -> None:
    client.anchor(cp(2, fill=2))
    a = client.anchor(cp(7, fill=7))
    client.verify_anchor(a, cp(7, fill=7))
    client.verify_anchor(Anchor.from_dict(a.to_dict()), cp(7, fill=7))

    # The checkpoint has another root than the anchor.
    with pytest.raises(HashMismatchError) as info:
        client.verify_anchor(a, cp(7, fill=8))
    assert info.value.expected == (bytes([8]) * 32).hex()
    assert info.value.actual == (bytes([7]) * 32).hex()
    # A forged anchor record claiming another root: the chain disagrees.
    with pytest.raises(HashMismatchError, match="registry entry 1"):
        client.verify_anchor(replace(a, root=bytes([8]) * 32), cp(7, fill=8))
    # Wrong size, wrong chain, wrong entry, wrong transaction, wrong contract.
    with pytest.raises(IntegrityError, match="another tree size"):
        client.verify_anchor(a, cp(8, fill=7))
    with pytest.raises(IntegrityError, match="another chain"):
        client.verify_anchor(replace(a, chain_id=a.chain_id + 1), cp(7, fill=7))
    with pytest.raises(IntegrityError, match="another size"):
        client.verify_anchor(replace(a, index=0), cp(7, fill=7))
    with pytest.raises(IntegrityError, match="no entry 5"):
        client.verify_anchor(replace(a, index=5), cp(7, fill=7))
    with pytest.raises(IntegrityError, match="not found"):
        client.verify_anchor(replace(a, tx_hash="0x" + "ab" * 32), cp(7, fill=7))
    with pytest.raises(IntegrityError, match="did not succeed in the named block"):
        client.verify_anchor(replace(a, block_number=a.block_number - 1), cp(7, fill=7))
    with pytest.raises(IntegrityError, match="not the committed CheckpointRegistry"):
        client.verify_anchor(replace(a, contract=client.publisher), cp(7, fill=7))


def test_find_recovers_anchor_and_detects_fork(client: AnchorClient) -> None:
    a = client.anchor(cp(4, fill=4))
    assert client.find(cp(4, fill=4)) == a
    assert client.find(cp(4, fill=4), tx_hash=a.tx_hash) == a
    assert client.find(cp(5, fill=4)) is None
    with pytest.raises(HashMismatchError, match="another root"):
        client.find(cp(4, fill=5))


# -- simulated labelling ---------------------------------------------------------------------


def test_simulated_is_labelled_everywhere() -> None:
    c = AnchorClient.simulated()
    a = c.anchor(cp(3))  # deploys on first use
    assert a.simulated is True
    assert a.describe().startswith(SIMULATED_LABEL)
    assert a.to_dict()["simulated"] is True
    assert a.to_dict()["chain"] == SIMULATED_LABEL
    assert "proves nothing to outsiders" in SIMULATED_LABEL
    assert c.chain_label == SIMULATED_LABEL
    c.verify_anchor(a, cp(3))


@pytest.mark.chain
def test_rpc_anchor_is_not_labelled_simulated(anvil_client: AnchorClient) -> None:
    a = anvil_client.anchor(cp(3))
    assert a.simulated is False
    assert a.describe().startswith("chain 31337: ")
    assert "SIMULATED" not in a.describe()


# -- gas ----------------------------------------------------------------------------------------


def test_gas_figures(client: AnchorClient, gas_record: dict[str, dict[str, int]]) -> None:
    assert client.last_deployment is not None
    first = client.anchor(cp(100))
    later = client.anchor(cp(200))
    figures = {
        "deploy": client.last_deployment.gas_used,
        "first anchor": first.gas_used,
        "later anchor": later.gas_used,
    }
    gas_record[backend(client)] = figures
    print(f"gas on {backend(client)} (origin {len(ORIGIN)} bytes): {figures}")
    # Regression bounds: storage layout or event changes show up here.
    assert 400_000 < figures["deploy"] < 700_000
    assert 80_000 < figures["first anchor"] < 110_000
    assert 65_000 < figures["later anchor"] < 95_000
    assert figures["later anchor"] < figures["first anchor"]


# -- §9.4 timeouts, retries, nothing lost ----------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_node_times_out_after_bounded_retries() -> None:
    sleeps: list[float] = []
    port = _closed_port()
    c = AnchorClient.rpc(
        f"http://127.0.0.1:{port}",
        key="0x" + "11" * 32,
        contract_address="0x" + "22" * 20,
        retry=RetryPolicy(attempts=3, initial_delay=0.25, factor=2.0),
        sleep=sleeps.append,
    )
    with pytest.raises(AnchorTimeout) as info:
        c.anchor(cp(1))
    err = info.value
    assert err.attempts == 3
    assert sleeps == [0.25, 0.5]
    assert f"no answer from http://127.0.0.1:{port} after 3 attempts" in str(err)
    assert "keep the anchor pending" in str(err)
    # Reads fail the same way.
    with pytest.raises(AnchorTimeout):
        c.latest(ORIGIN)


def test_flush_keeps_unreachable_anchor_pending() -> None:
    c = AnchorClient.rpc(
        f"http://127.0.0.1:{_closed_port()}",
        key="0x" + "11" * 32,
        contract_address="0x" + "22" * 20,
        retry=RetryPolicy(attempts=2, initial_delay=0.0),
        sleep=lambda _s: None,
    )
    q = MemoryPendingQueue()
    q.add(cp(1))
    assert flush_pending(c, q) == []
    (p,) = q.pending()
    assert p.attempts == 1
    assert p.last_error is not None and "no answer" in p.last_error


def test_rpc_url_credentials_are_not_shown() -> None:
    c = AnchorClient.rpc(
        f"http://user:secret@127.0.0.1:{_closed_port()}/rpc?apikey=secret",
        key="0x" + "11" * 32,
        contract_address="0x" + "22" * 20,
        retry=RetryPolicy(attempts=1),
    )
    with pytest.raises(AnchorTimeout) as info:
        c.count(ORIGIN)
    assert "secret" not in str(info.value)


def test_rpc_without_contract_address_is_refused() -> None:
    c = AnchorClient.rpc("http://127.0.0.1:1", key="0x" + "11" * 32)
    with pytest.raises(AnchorError, match="no registry contract address configured"):
        c.count(ORIGIN)


@pytest.mark.chain
def test_receipt_timeout_resends_same_transaction_and_recovers(
    anvil_node: AnvilNode, anvil_client: AnchorClient
) -> None:
    w3 = anvil_client.w3
    slow = AnchorClient.rpc(
        anvil_node.url,
        key=anvil_node.private_keys[0],
        contract_address=anvil_client.contract_address,
        retry=RetryPolicy(attempts=2, initial_delay=0.0, receipt_timeout=0.3),
    )
    q = MemoryPendingQueue()
    q.add(cp(11, fill=11))
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        # The node takes the transaction but mines nothing: the anchor stays pending with
        # the hash of the signed transaction (sent twice: the same bytes, so at most once on chain).
        assert flush_pending(slow, q) == []
        (p,) = q.pending()
        assert p.tx_hash is not None and p.attempts == 1
        assert "may still be mined" in (p.last_error or "")
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    # The next pass finds the mined transaction instead of sending another.
    (a,) = flush_pending(slow, q)
    assert a.tx_hash == p.tx_hash
    assert q.pending() == [] and q.anchors == [a]
    assert anvil_client.count(ORIGIN) == 1
    anvil_client.verify_anchor(a, cp(11, fill=11))


def test_anchorer_queues_new_checkpoints_and_drops_superseded() -> None:
    c = AnchorClient.simulated()
    q = MemoryPendingQueue()
    current: list[Checkpoint | None] = [None]
    anchorer = Anchorer(c, q, lambda: current[0], cadence=3600)
    assert anchorer.run_once() == []
    current[0] = cp(5, fill=5)
    (a,) = anchorer.run_once()
    assert (a.size, a.simulated) == (5, True)
    assert anchorer.run_once() == []  # same size: nothing new
    # A stale pending anchor whose size was overtaken on chain is dropped, not lost silently.
    q.add(cp(3, fill=3))
    current[0] = cp(9, fill=9)
    (b,) = anchorer.run_once()
    assert b.size == 9
    assert [(p.size, why) for p, why in q.dropped] == [
        (3, "superseded: the chain already has size 5")
    ]
    assert q.pending() == []
    assert [x.size for x in q.anchors] == [5, 9]


def test_anchorer_background_thread() -> None:
    c = AnchorClient.simulated()
    q = MemoryPendingQueue()
    anchorer = Anchorer(c, q, lambda: cp(1), cadence=0.01)
    anchorer.start()
    try:
        for _ in range(500):
            if q.anchors:
                break
            time.sleep(0.01)
    finally:
        anchorer.stop(timeout=5)
    assert [a.size for a in q.anchors] == [1]


# -- keys -------------------------------------------------------------------------------------

KEY = "0x" + "42" * 32


def test_publisher_key_from_file_and_env(tmp_path: Path) -> None:
    f = tmp_path / "anchor.key"
    f.write_text(KEY + "\n")
    f.chmod(0o600)
    addr = Account.from_key(KEY).address
    assert load_publisher_key(key_file=f, env={}).address == addr
    assert load_publisher_key(env={"YIMA_ANCHOR_KEY_FILE": str(f)}).address == addr
    assert load_publisher_key(env={"YIMA_ANCHOR_KEY": KEY[2:]}).address == addr
    assert load_publisher_key(KEY, env={}).address == addr


def test_publisher_key_refusals(tmp_path: Path) -> None:
    f = tmp_path / "anchor.key"
    f.write_text(KEY)
    f.chmod(0o644)
    with pytest.raises(AnchorError, match="chmod 600") as info:
        load_publisher_key(key_file=f, env={})
    assert KEY[2:] not in str(info.value)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    with pytest.raises(AnchorError, match="no publisher key"):
        load_publisher_key(env={})
    with pytest.raises(AnchorError, match="not 32 bytes of hex") as info:
        load_publisher_key(env={"YIMA_ANCHOR_KEY": "zz" + KEY[4:]})
    assert KEY[4:] not in str(info.value)
    with pytest.raises(AnchorError, match="cannot read"):
        load_publisher_key(key_file=tmp_path / "missing.key", env={})


# -- anvil helper -----------------------------------------------------------------------------


@pytest.mark.chain
def test_anvil_on_chosen_port(anvil_node: AnvilNode) -> None:
    port = _closed_port()
    with start_anvil(port=port) as node:
        assert node.url == f"http://127.0.0.1:{port}"
        assert node.chain_id == 31337
        assert len(node.private_keys) == len(node.accounts) == 10
        c = AnchorClient.rpc(node.url, key=node.private_keys[0])
        assert c.chain_id == 31337
    assert node.process.poll() is not None
