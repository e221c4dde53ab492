"""Alembic environment: migrate the connection handed over by :func:`api.store.db.upgrade`.

There is no ``alembic.ini`` URL: the app, the CLI and the tests all build the engine with
:func:`api.store.db.make_engine` (SQLite pragmas, PostgreSQL search_path) and pass a connection
in ``config.attributes["connection"]``, so migrations run on exactly the engine the service uses.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from api.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; future migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by the caller."""
    connection = config.attributes.get("connection")
    if connection is None:
        # Plain `alembic` CLI use: fall back to the service's own engine factory and URL.
        from api.store.db import make_engine, write_transaction

        url = config.get_main_option("sqlalchemy.url")
        with write_transaction(make_engine(url)) as conn:
            _run(conn)
        return
    _run(connection)


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; use upgrade(engine)")
run_migrations_online()
