"""chunks.guardrail_verdict: the indirect-injection scan result stored with each chunk

NULL = not scanned (chunks stored before this revision, or scanning switched off).

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chunks", sa.Column("guardrail_verdict", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("chunks", "guardrail_verdict")
