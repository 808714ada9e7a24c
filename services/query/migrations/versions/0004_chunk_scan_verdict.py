"""query: the ingestion-time injection scan verdict of each chunk

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "query"


def upgrade() -> None:
    # NULL for rows indexed before this column existed: those chunks are scanned at query time.
    op.add_column("chunks", sa.Column("guardrail_verdict", JSONB, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("chunks", "guardrail_verdict", schema=SCHEMA)
