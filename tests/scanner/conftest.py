"""Fixtures for the scanner tests: a fake ledger, a device key, a queue, a client."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scanner_fake_ledger import PRODUCER, TOKEN, FakeLedger, fixed_now

from scanner.client import LedgerClient
from scanner.keys import DeviceKey, create_key
from scanner.queue import CaptureQueue


@pytest.fixture
def fake() -> FakeLedger:
    """A fresh fake ledger."""
    return FakeLedger()


@pytest.fixture
def device_key(tmp_path: Path) -> DeviceKey:
    """A device key from a fixed seed (tests only)."""
    seed = hashlib.sha256(b"yima-scan test device").digest()
    return create_key(tmp_path / "home" / "device.key", PRODUCER, seed=seed)


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[CaptureQueue]:
    """The device SQLite file."""
    with CaptureQueue(tmp_path / "home" / "queue.sqlite") as q:
        yield q


@pytest.fixture
def client(fake: FakeLedger) -> Iterator[LedgerClient]:
    """A client talking to the fake through httpx.MockTransport."""
    with LedgerClient("http://ledger.test", TOKEN, transport=fake.transport()) as c:
        yield c


@pytest.fixture
def registered(fake: FakeLedger, device_key: DeviceKey, client: LedgerClient) -> DeviceKey:
    """The device key, registered with the fake."""
    from scanner.keys import key_statement

    client.register_key("huaxin-pharma", key_statement(device_key, created="2026-11-27T00:00:00Z"))
    return device_key


@pytest.fixture
def now() -> object:
    """The fixed clock."""
    return fixed_now
