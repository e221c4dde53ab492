"""The verify budget shared by the API processes of a host (api.ratelimit, docs/adr/0016)."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_world import FakeClock

from api.app import build_container
from api.container import RateLimiter
from api.ratelimit import SharedRateLimiter
from api.settings import Settings
from fixtures import world
from ledger.note import Signer

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_same_contract_as_the_in_memory_limiter(tmp_path: Path) -> None:
    # Differential: the same decisions and waits over a random sequence of clients and times.
    clock = FakeClock(T0)
    mem = RateLimiter(5, clock)
    shared = SharedRateLimiter(tmp_path / "rl.bin", 5, clock)
    rng = random.Random(7)
    try:
        for _ in range(3000):
            if rng.random() < 0.3:
                clock.advance(seconds=rng.choice([0.5, 3, 12, 70]))
            client = rng.choice(["198.51.100.7", "203.0.113.9", "page\x00198.51.100.7", "::1"])
            a, b = mem.take(client), shared.take(client)
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert a == pytest.approx(b)
    finally:
        shared.close()


def test_two_limiters_on_one_file_share_the_budget(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    a = SharedRateLimiter(tmp_path / "rl.bin", 5, clock)
    b = SharedRateLimiter(tmp_path / "rl.bin", 5, clock)
    try:
        assert [a.take("c"), b.take("c"), a.take("c"), b.take("c"), a.take("c")] == [None] * 5
        wait = b.take("c")
        assert wait == pytest.approx(12.0)  # 5 per minute: one token every 12 s
        assert a.take("other") is None  # per client
        clock.advance(seconds=12)
        assert a.take("c") is None and b.take("c") is not None
    finally:
        a.close()
        b.close()
        a.close()  # idempotent


def test_another_process_spends_the_same_budget(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    clock = FakeClock(datetime.now(UTC))
    mine = SharedRateLimiter(path, 3, clock)
    try:
        script = (
            "import sys; from datetime import UTC, datetime; from pathlib import Path\n"
            "from api.ratelimit import SharedRateLimiter\n"
            "rl = SharedRateLimiter(Path(sys.argv[1]), 3, lambda: datetime.now(UTC))\n"
            "print([rl.take('c') is None for _ in range(2)])\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[True, True]"
        assert mine.take("c") is None  # the third token
        assert mine.take("c") is not None
    finally:
        mine.close()


def test_a_file_of_another_layout_starts_over_full(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    path.write_bytes(b"not a bucket table")
    clock = FakeClock(T0)
    rl = SharedRateLimiter(path, 2, clock, slots=16)
    try:
        assert rl.take("c") is None and rl.take("c") is None and rl.take("c") is not None
    finally:
        rl.close()
    # A different table size is another layout too.
    rl = SharedRateLimiter(path, 2, clock, slots=32)
    try:
        assert rl.take("c") is None
    finally:
        rl.close()


def test_the_service_uses_the_shared_file_when_configured(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'y.db'}",
        data_dir=tmp_path,
        verify_rate_file=tmp_path / "verify-rate.bin",
        verify_rate_per_minute=4,
    )
    c = build_container(settings, log_signer=Signer(settings.origin, world.demo_key("t/log")))
    try:
        assert isinstance(c.limiter, SharedRateLimiter)
        assert (tmp_path / "verify-rate.bin").exists()
    finally:
        c.limiter.close()
        c.engine.dispose()
    c = build_container(
        Settings(database_url=f"sqlite:///{tmp_path / 'y.db'}", data_dir=tmp_path),
        log_signer=Signer(settings.origin, world.demo_key("t/log")),
    )
    try:
        assert isinstance(c.limiter, RateLimiter)
    finally:
        c.engine.dispose()
