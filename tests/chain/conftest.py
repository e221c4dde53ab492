"""Fixtures for the chain tests: anvil (from contracts/node_modules) on loopback, and clients.

anvil is started once per session on 127.0.0.1 with a port it picks itself. Where the binary is
absent the anvil tests skip and say why, unless ``REQUIRE_CHAIN=1`` (CI), where they fail. The
simulated (in-process) backend needs only ``web3[tester]`` and always runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from contracts.anchor import AnchorClient
from contracts.anvil import AnvilNode, anvil_binary, start_anvil

# Gas used, by backend and operation; printed at the end of the session.
GAS: dict[str, dict[str, int]] = {}


def require_chain(reason: str) -> None:
    """Skip (or, with REQUIRE_CHAIN=1, fail) the calling test."""
    if os.environ.get("REQUIRE_CHAIN") == "1":
        pytest.fail(f"REQUIRE_CHAIN=1 but {reason}")
    pytest.skip(f"{reason} (set REQUIRE_CHAIN=1 to make this a failure)")


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """A session-wide anvil node on 127.0.0.1 (London rules)."""
    if anvil_binary() is None:
        require_chain(
            "anvil not installed in contracts/node_modules (run `make chain-deps`, "
            "i.e. npm ci in contracts/)"
        )
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["anvil", "simulated"])
def client(request: pytest.FixtureRequest) -> AnchorClient:
    """A client with a freshly deployed registry, on anvil and on the simulated chain."""
    if request.param == "anvil":
        request.applymarker(pytest.mark.chain)
        node: AnvilNode = request.getfixturevalue("anvil_node")
        c = AnchorClient.rpc(node.url, key=node.private_keys[0])
    else:
        c = AnchorClient.simulated()
    c.deploy()
    return c


@pytest.fixture
def anvil_client(anvil_node: AnvilNode) -> AnchorClient:
    """A client on anvil with a freshly deployed registry."""
    c = AnchorClient.rpc(anvil_node.url, key=anvil_node.private_keys[0])
    c.deploy()
    return c


@pytest.fixture(scope="session")
def gas_record() -> dict[str, dict[str, int]]:
    """Where tests record gas figures (backend -> operation -> gas)."""
    return GAS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the measured gas figures."""
    if not GAS:
        return
    terminalreporter.section("CheckpointRegistry gas")
    for backend, figures in sorted(GAS.items()):
        shown = ", ".join(f"{k} {v:,}" for k, v in figures.items())
        terminalreporter.write_line(f"{backend}: {shown}")
