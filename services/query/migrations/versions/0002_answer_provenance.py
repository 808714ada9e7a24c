"""query: messages record provider, model, prompt version and the standalone question

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "query"
COLUMNS = ("provider", "model", "prompt_version", "standalone_question")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("messages", sa.Column(name, sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("messages", name, schema=SCHEMA)
