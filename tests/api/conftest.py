"""Fixtures for the HTTP API: one app per test over SQLite (a tmp file) and PostgreSQL.

PostgreSQL runs in a private schema per test (the ``pg_schema`` fixture of
``tests/integration/conftest.py``, reused here), selected through the URL's
``options=-csearch_path=...``; where PostgreSQL is unreachable those cases skip with the
reason (or fail under ``REQUIRE_PG=1``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_world import ORIGIN, FakeClock, World, register_world, seed
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.settings import Settings
from ledger.note import Signer


def _integration_conftest():  # type: ignore[no-untyped-def]
    # The integration conftest is not importable as a module (tests/ is no package): load it
    # by path under a private name to reuse its PostgreSQL schema fixture.
    path = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
    spec = importlib.util.spec_from_file_location("yima_tests_integration_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_pg = _integration_conftest()
pg_schema = _pg.pg_schema
PgSchema = _pg.PgSchema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'yima.db'}"
    schema: PgSchema = request.getfixturevalue("pg_schema")
    sep = "&" if "?" in schema.url else "?"
    return f"{schema.url}{sep}options=-csearch_path%3D{schema.name}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))


@pytest.fixture
def app_client(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> Iterator[tuple[TestClient, Container]]:
    """An app on an empty log (no registry yet) and its container."""
    settings = Settings(
        database_url=database_url,
        origin=ORIGIN,
        data_dir=tmp_path,
        verify_rate_per_minute=30,
    )
    signer = Signer(ORIGIN, seed("log"))
    app = create_app(settings, clock=clock, log_signer=signer)
    with TestClient(app) as client:
        yield client, app.state.container


@pytest.fixture
def world(app_client: tuple[TestClient, Container], clock: FakeClock) -> World:
    """The registered supply chain on a fresh log."""
    client, container = app_client
    w = World(client, container, clock)
    register_world(w)
    return w
