"""query: the token count of each chunk, counted once when it is indexed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "query"


def upgrade() -> None:
    # NULL for rows indexed before: those chunks are counted when an answer reads them.
    op.add_column("chunks", sa.Column("token_count", sa.Integer, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("chunks", "token_count", schema=SCHEMA)
