"""roles' tenant options, quotas, API keys, usage ledger

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("members_can_write_documents", sa.Boolean(), server_default=sa.false(), nullable=False),
        schema="gateway",
    )
    for table in ("tenants", "users"):
        op.add_column(table, sa.Column("daily_token_quota", sa.BigInteger(), nullable=True), schema="gateway")
        op.add_column(table, sa.Column("monthly_token_quota", sa.BigInteger(), nullable=True), schema="gateway")
    op.create_table(
        "api_keys",
        sa.Column("id", UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["gateway.users.id"], name="fk_api_keys_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
        schema="gateway",
    )
    op.create_index("ix_gateway_api_keys_user_id", "api_keys", ["user_id"], schema="gateway")
    op.create_table(
        "usage_ledger",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("api_key_id", UUID(as_uuid=True), nullable=True),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reserved_tokens", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('reserved', 'settled')", name="ck_usage_ledger_status_known"),
        sa.PrimaryKeyConstraint("id", name="pk_usage_ledger"),
        schema="gateway",
    )
    op.create_index("ix_usage_ledger_user_occurred", "usage_ledger", ["user_id", "occurred_at"], schema="gateway")
    op.create_index(
        "ix_usage_ledger_tenant_occurred", "usage_ledger", ["tenant_id", "occurred_at"], schema="gateway"
    )


def downgrade() -> None:
    op.drop_table("usage_ledger", schema="gateway")
    op.drop_table("api_keys", schema="gateway")
    for table in ("tenants", "users"):
        op.drop_column(table, "monthly_token_quota", schema="gateway")
        op.drop_column(table, "daily_token_quota", schema="gateway")
    op.drop_column("tenants", "members_can_write_documents", schema="gateway")
