"""Drop ``ix_items_product_gtin``: ``ix_items_product_gtin_lot`` already serves its queries.

Every item upsert of the writer maintains each index of ``items``; the single-column index
duplicated the leading column of the (product_gtin, lot) one, which both engines use for a
lookup by ``product_gtin`` alone (docs/PERFORMANCE.md, ingest).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Written out in full (not imported from ``api.store.tables``): a migration is a frozen record.
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Drop the redundant single-column index."""
    op.drop_index("ix_items_product_gtin", table_name="items")


def downgrade() -> None:
    """Re-create it."""
    op.create_index("ix_items_product_gtin", "items", ["product_gtin"])
