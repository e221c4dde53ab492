"""One process per log runs the background work (witnessing, anchoring); others follow.

Two containers on one database stand for two API processes (``yima serve --workers 2``, or
two hosts on one PostgreSQL log): the leader lock (SequencerLock: a PostgreSQL advisory lock,
a ``flock`` beside a SQLite file) elects one of them, and the other takes over when it stops.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import ORIGIN, seed
from served import wait_for

from api.app import build_container
from api.container import Container
from api.settings import Settings, WitnessEndpoint
from ledger.note import Signer

LOG = Signer(ORIGIN, seed("log"))
WITNESS = Signer("witness.test", seed("witness"))


@pytest.fixture
def two(database_url: str, tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    settings = Settings(
        database_url=database_url,
        origin=ORIGIN,
        data_dir=tmp_path,
        # Never reached: the witnessing pass only runs on its (long) cadence here.
        witnesses=(
            WitnessEndpoint(name="witness.test", url="http://127.0.0.1:9", vkey=WITNESS.vkey()),
        ),
        witness_cadence_s=3600,
    )
    a = build_container(settings, log_signer=LOG)
    b = build_container(settings, log_signer=LOG)
    b.LEADER_RETRY_S = 0.05  # type: ignore[misc]  # take over fast in the test
    try:
        yield a, b
    finally:
        for c in (b, a):
            c.stop_background()
            c.engine.dispose()


def test_one_leader_runs_the_background_work(two: tuple[Container, Container]) -> None:
    a, b = two
    a.start_background()
    b.start_background()
    assert a.leading and [type(w).__name__ for w in a.background] == ["Witnessing"]
    assert not b.leading and b.background == []
    time.sleep(0.2)  # several retries: the follower stays a follower while the leader runs
    assert not b.leading and b.background == []

    a.stop_background()
    assert not a.leading and a.background == []
    assert wait_for(lambda: b.leading and len(b.background) == 1)

    # The old leader comes back as a follower; stopping it twice is harmless.
    a.LEADER_RETRY_S = 0.05  # type: ignore[misc]
    a.start_background()
    assert not a.leading
    b.stop_background()
    b.stop_background()
    assert wait_for(lambda: a.leading and len(a.background) == 1)


def test_no_background_work_means_no_election(database_url: str, tmp_path: Path) -> None:
    c = build_container(
        Settings(database_url=database_url, origin=ORIGIN, data_dir=tmp_path), log_signer=LOG
    )
    try:
        c.start_background()
        assert c.election is None and not c.leading and c.background == []
    finally:
        c.stop_background()
        c.engine.dispose()
