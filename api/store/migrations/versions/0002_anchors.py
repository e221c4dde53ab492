"""Anchors (checkpoints anchored on an outside chain) and an index of registry entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Written out in full (not imported from ``api.store.tables``): a migration is a frozen record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the ``anchors`` table."""
    op.create_table(
        "anchors",
        sa.Column("id", _ROWID, autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("size", _INDEX, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("chain_index", sa.BigInteger(), nullable=True),
        sa.Column("chain_time", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchors")),
        sa.UniqueConstraint(
            "chain_id",
            "contract",
            "origin",
            "size",
            name=op.f("uq_anchors_chain_id_contract_origin_size"),
        ),
    )
    op.create_index("ix_anchors_status_size", "anchors", ["status", "size"])
    # Registry entries by kind (proof bundles); partial, so event rows never touch it.
    op.create_index(
        "ix_entries_kind_registry",
        "entries",
        ["kind", "idx"],
        sqlite_where=sa.text("kind <> 'event'"),
        postgresql_where=sa.text("kind <> 'event'"),
    )


def downgrade() -> None:
    """Drop the ``anchors`` table and the registry-entry index."""
    op.drop_index("ix_entries_kind_registry", table_name="entries")
    op.drop_index("ix_anchors_status_size", table_name="anchors")
    op.drop_table("anchors")
