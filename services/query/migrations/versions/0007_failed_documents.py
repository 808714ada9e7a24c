"""query: documents a stage failed stop being served (document.failed.v1)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "query"


def upgrade() -> None:
    op.create_table(
        "failed_documents",
        sa.Column("document_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("document_id", name="pk_failed_documents"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("failed_documents", schema=SCHEMA)
