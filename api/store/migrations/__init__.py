"""Alembic migrations for the log store (run through :func:`api.store.db.upgrade`)."""
