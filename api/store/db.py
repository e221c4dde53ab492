"""Engines, write transactions and schema migrations.

SQLite (WAL) is the embedded default, a file under ``./var/``; PostgreSQL is selected by the
database URL. Nothing here runs at import time: the app factory and the tests call
:func:`make_engine` and :func:`upgrade` explicitly.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from api.store.walcheckpoint import FALLBACK_PAGES, WalCheckpointer

__all__ = [
    "DEFAULT_DATABASE_URL",
    "WRITE_OPTION",
    "current_revision",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "normalize_url",
    "sqlite_file",
    "upgrade",
    "wal_checkpointer",
    "write_transaction",
]

#: The embedded default: a SQLite file under ./var/ (relative to the working directory).
DEFAULT_DATABASE_URL = "sqlite:///var/yima.db"

#: Execution option that marks a connection as a writer (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "yima_write"

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Engines whose WAL checkpoints run in the background (see :func:`make_engine`).
_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


def normalize_url(url: str) -> str:
    """Pick the drivers we ship: ``postgresql://`` means psycopg 3, not psycopg2.

    Args:
        url: A SQLAlchemy database URL.

    Returns:
        The URL with an explicit driver where the bare scheme would pick one we do not install.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(
    url: str | None = None,
    *,
    busy_timeout_ms: int = 30_000,
    background_checkpoints: bool = False,
    echo: bool = False,
    **kwargs: Any,
) -> Engine:
    """Create an engine configured for the log.

    SQLite: WAL journal, ``synchronous=NORMAL`` (durable at each WAL checkpoint, never
    corrupt), foreign keys on, a busy timeout, and pysqlite's own transaction handling switched
    off so that SQLAlchemy emits ``BEGIN`` itself — ``BEGIN IMMEDIATE`` for connections that
    carry :data:`WRITE_OPTION`, so two writers queue on the database lock at ``BEGIN`` instead
    of one failing with "database is locked" when it upgrades a read lock mid-transaction.
    The file's directory is created if missing. With ``background_checkpoints`` (the service
    sets it), WAL checkpoints of a database file run in a background thread after each
    :func:`write_transaction` instead of inside a writer's commit (docs/adr/0015).

    PostgreSQL: psycopg 3, ``READ COMMITTED`` (the sequencer relies on it: each statement
    after the advisory lock sees the previous writer's commit).

    Args:
        url: SQLAlchemy URL; default :data:`DEFAULT_DATABASE_URL`.
        busy_timeout_ms: How long a SQLite connection waits for the write lock.
        background_checkpoints: SQLite files only: checkpoint the WAL in a background thread
            (:class:`api.store.walcheckpoint.WalCheckpointer`); ignored elsewhere.
        echo: Log SQL.
        **kwargs: Passed to :func:`sqlalchemy.create_engine` (e.g. ``connect_args``).

    Returns:
        The engine.
    """
    sa_url = make_url(normalize_url(url or DEFAULT_DATABASE_URL))
    if sa_url.get_backend_name() == "sqlite":
        database = _file_of(sa_url.database)
        if database is not None:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, echo=echo, **kwargs)
        checkpointer = None
        if background_checkpoints and database is not None:
            checkpointer = WalCheckpointer(database, busy_timeout_ms=busy_timeout_ms)
            _CHECKPOINTERS[engine] = checkpointer
            # The thread must not outlive its engine (it holds a connection to the file).
            weakref.finalize(engine, checkpointer.stop, 0)
        _configure_sqlite(engine, busy_timeout_ms, checkpointer is not None)
        return engine
    kwargs.setdefault("isolation_level", "READ COMMITTED")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(sa_url, echo=echo, **kwargs)


def _file_of(database: str | None) -> str | None:
    """The file of a SQLite URL's database part (None: in memory or a ``file:`` URI)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def sqlite_file(engine: Engine) -> str | None:
    """The database file of a SQLite engine; None for in-memory SQLite or another backend."""
    return _file_of(engine.url.database) if is_sqlite(engine) else None


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, background: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below own BEGIN; pysqlite's implicit transactions
        # would otherwise start them lazily and always DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            if background:
                # Only a safety net: the background thread normally keeps the WAL far smaller.
                cursor.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_PAGES}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether the engine (or connection) talks to SQLite."""
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine | Connection) -> bool:
    """Whether the engine (or connection) talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One writer transaction: commits on success, rolls back on any exception.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (see :func:`make_engine`).

    Args:
        engine: An engine from :func:`make_engine`.

    Yields:
        The connection, inside its transaction.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn
    checkpointer = _CHECKPOINTERS.get(engine)
    if checkpointer is not None:
        checkpointer.notify()


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The engine's background WAL checkpointer (None unless :func:`make_engine` made one)."""
    return _CHECKPOINTERS.get(engine)


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    # env.py runs the migration on this connection (and its transaction) instead of opening
    # its own from a URL: one code path for the app, the CLI and the tests.
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic, in one transaction.

    Args:
        engine: An engine from :func:`make_engine`.
        revision: Target revision (default: the newest).
    """
    from alembic import command

    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in the database, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
