"""Initial schema: the log, its Merkle hashes and checkpoints, and the indexes over it.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Written out in full rather than importing ``api.store.tables``: a migration is a frozen record
of what the schema was at this revision, and must not change when the models do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# 64-bit log positions on PostgreSQL; plain INTEGER (a rowid alias where it is the primary
# key) on SQLite.
_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table of the initial schema."""
    op.create_table(
        "entries",
        sa.Column("idx", _INDEX, autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("capture_id", sa.String(length=64), nullable=True),
        sa.Column("producer", sa.String(length=255), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_entries")),
    )
    op.create_index(op.f("ix_entries_capture_id"), "entries", ["capture_id"])
    op.create_index(op.f("ix_entries_leaf_hash"), "entries", ["leaf_hash"])
    op.create_index(
        "uq_entries_event_id",
        "entries",
        ["event_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'event'"),
        postgresql_where=sa.text("kind = 'event'"),
    )

    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", _INDEX, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_merkle_nodes")),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "checkpoints",
        sa.Column("size", _INDEX, autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "cosignatures",
        sa.Column("size", _INDEX, nullable=False),
        sa.Column("witness", sa.String(length=255), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["size"], ["checkpoints.size"], name=op.f("fk_cosignatures_size_checkpoints")
        ),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_cosignatures")),
    )

    op.create_table(
        "captures",
        sa.Column("capture_id", sa.String(length=64), nullable=False),
        sa.Column("producer", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("first_index", _INDEX, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("checkpoint_size", _INDEX, nullable=False),
        sa.Column("receipt_json", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("capture_id", name=op.f("pk_captures")),
        sa.UniqueConstraint("producer", "seq", name=op.f("uq_captures_producer_seq")),
    )
    op.create_table(
        "producer_heads",
        sa.Column("producer", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("capture_id", sa.String(length=64), nullable=False),
        sa.Column("updated_index", _INDEX, nullable=False),
        sa.PrimaryKeyConstraint("producer", name=op.f("pk_producer_heads")),
    )

    op.create_table(
        "items",
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("product_gtin", sa.String(length=14), nullable=True),
        sa.Column("lot", sa.String(length=64), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("custodian", sa.String(length=255), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("parent", sa.String(length=255), nullable=True),
        sa.Column("in_transit_to", sa.String(length=255), nullable=True),
        sa.Column("recalled", sa.Boolean(), nullable=False),
        sa.Column("quarantined", sa.Boolean(), nullable=False),
        sa.Column("dispense_count", sa.Integer(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("updated_index", _INDEX, nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_items")),
    )
    op.create_index(op.f("ix_items_custodian"), "items", ["custodian"])
    op.create_index(op.f("ix_items_parent"), "items", ["parent"])
    op.create_index(op.f("ix_items_product_gtin"), "items", ["product_gtin"])
    op.create_index("ix_items_product_gtin_lot", "items", ["product_gtin", "lot"])

    op.create_table(
        "item_events",
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("log_index", _INDEX, nullable=False),
        sa.ForeignKeyConstraint(
            ["log_index"], ["entries.idx"], name=op.f("fk_item_events_log_index_entries")
        ),
        sa.PrimaryKeyConstraint("code", "log_index", name=op.f("pk_item_events")),
    )

    op.create_table(
        "alerts",
        sa.Column("id", _INDEX, autoincrement=True, nullable=False),
        sa.Column("log_index", _INDEX, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("org", sa.String(length=255), nullable=True),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["log_index"], ["entries.idx"], name=op.f("fk_alerts_log_index_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_kind"), "alerts", ["kind"])
    op.create_index(op.f("ix_alerts_log_index"), "alerts", ["log_index"])
    op.create_index(op.f("ix_alerts_org"), "alerts", ["org"])

    op.create_table(
        "orgs",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=True),
        sa.Column("company_prefixes", sa.JSON(), nullable=False),
        sa.Column("registered_index", _INDEX, nullable=True),
        sa.Column("data_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
    )
    op.create_table(
        "org_keys",
        sa.Column("org", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("valid_from_index", _INDEX, nullable=False),
        sa.Column("revoked_at_index", _INDEX, nullable=True),
        sa.ForeignKeyConstraint(["org"], ["orgs.id"], name=op.f("fk_org_keys_org_orgs")),
        sa.PrimaryKeyConstraint("org", "key_id", name=op.f("pk_org_keys")),
    )
    op.create_table(
        "products",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("nmpa_drug_id", sa.String(length=7), nullable=True),
        sa.Column("data_json", sa.Text(), nullable=True),
        sa.Column("registered_index", _INDEX, nullable=True),
        sa.PrimaryKeyConstraint("gtin", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_nmpa_drug_id"), "products", ["nmpa_drug_id"])
    op.create_index(op.f("ix_products_owner"), "products", ["owner"])
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("org", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org"], ["orgs.id"], name=op.f("fk_api_tokens_org_orgs")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_tokens")),
    )
    op.create_index(op.f("ix_api_tokens_org"), "api_tokens", ["org"])

    op.create_table(
        "consumer_scans",
        sa.Column("id", _INDEX, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consumer_scans")),
    )
    op.create_index("ix_consumer_scans_code_at", "consumer_scans", ["code", "at"])


def downgrade() -> None:
    """Drop every table (children before parents)."""
    for table in (
        "consumer_scans",
        "api_tokens",
        "products",
        "org_keys",
        "orgs",
        "alerts",
        "item_events",
        "items",
        "producer_heads",
        "captures",
        "cosignatures",
        "checkpoints",
        "merkle_nodes",
        "entries",
    ):
        op.drop_table(table)
