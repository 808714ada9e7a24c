"""chunker: tombstones of deleted documents (the deletion saga)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "chunker"


def upgrade() -> None:
    op.create_table(
        "deleted_documents",
        sa.Column("document_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("document_id", name="pk_deleted_documents"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("deleted_documents", schema=SCHEMA)
