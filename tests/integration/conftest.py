"""Fixtures for store tests: a migrated ``engine`` on SQLite (WAL file) and on PostgreSQL.

PostgreSQL is found at ``$YIMA_TEST_PG_URL`` (default: trust auth on 127.0.0.1:5432, database
``test``). Where it is unreachable the PostgreSQL cases skip and say why — unless
``REQUIRE_PG=1``, where they fail (CI). Each PostgreSQL test gets its own schema
``yima_test_<random hex>``, set as the connection's search_path and dropped afterwards, so
parallel runs (pytest-xdist, two checkouts) and re-runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from api.store.db import make_engine, normalize_url, upgrade

PG_URL = os.environ.get("YIMA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@cache
def pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per test session)."""
    try:
        probe = create_engine(normalize_url(PG_URL), connect_args={"connect_timeout": 3})
        try:
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            probe.dispose()
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {first_line}"
    return None


def require_pg() -> None:
    """Skip (or, with REQUIRE_PG=1, fail) the calling test when PostgreSQL is absent."""
    reason = pg_unreachable()
    if reason is None:
        return
    if os.environ.get("REQUIRE_PG") == "1":
        pytest.fail(f"REQUIRE_PG=1 but {reason}")
    pytest.skip(f"{reason} (set REQUIRE_PG=1 to make this a failure)")


@dataclass(frozen=True)
class PgSchema:
    """A private schema in the test database, and how to open engines on it."""

    name: str
    url: str

    @property
    def connect_args(self) -> dict[str, str]:
        return {"options": f"-csearch_path={self.name}"}

    def engine(self) -> Engine:
        return make_engine(self.url, connect_args=self.connect_args)


@pytest.fixture
def pg_schema() -> Iterator[PgSchema]:
    """A fresh, empty PostgreSQL schema, dropped after the test."""
    require_pg()
    name = f"yima_test_{secrets.token_hex(6)}"
    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        yield PgSchema(name, PG_URL)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """Path of a not-yet-existing SQLite file (the engine creates it, in WAL mode)."""
    return tmp_path / "var" / "yima.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty log database: SQLite file (WAL) or a private PostgreSQL schema."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'var' / 'yima.db'}")
    else:
        eng = request.getfixturevalue("pg_schema").engine()
    try:
        upgrade(eng)
        yield eng
    finally:
        eng.dispose()
