"""ingest: deletion saga progress; the same bytes may come back once their document is deleted

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "ingest"
TIMESTAMPS = ("deletion_requested_at", "index_removed_at", "chunks_removed_at", "deleted_at")
LIVE = "status NOT IN ('deleting', 'deleted')"


def upgrade() -> None:
    for name in TIMESTAMPS:
        op.add_column("documents", sa.Column(name, sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.drop_constraint("uq_documents_tenant_id_sha256", "documents", schema=SCHEMA, type_="unique")
    op.create_index(
        "uq_documents_live_tenant_id_sha256",
        "documents",
        ["tenant_id", "sha256"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text(LIVE),
    )
    op.create_index("ix_documents_status_updated_at", "documents", ["status", "updated_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_documents_status_updated_at", table_name="documents", schema=SCHEMA)
    op.drop_index("uq_documents_live_tenant_id_sha256", table_name="documents", schema=SCHEMA)
    op.create_unique_constraint("uq_documents_tenant_id_sha256", "documents", ["tenant_id", "sha256"], schema=SCHEMA)
    for name in reversed(TIMESTAMPS):
        op.drop_column("documents", name, schema=SCHEMA)
