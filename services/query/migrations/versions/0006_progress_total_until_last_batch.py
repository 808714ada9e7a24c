"""query: a document's chunk total is unknown until its last batch arrives (chunks.embedded.v2)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "query"


def upgrade() -> None:
    op.alter_column("document_progress", "total_chunks", existing_type=sa.Integer(), nullable=True, schema=SCHEMA)


def downgrade() -> None:
    # Rows still waiting for their last batch have no total: nothing to index them against in v1.
    op.execute(f"DELETE FROM {SCHEMA}.document_progress WHERE total_chunks IS NULL")
    op.alter_column("document_progress", "total_chunks", existing_type=sa.Integer(), nullable=False, schema=SCHEMA)
