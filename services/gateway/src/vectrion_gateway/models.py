"""Tables the gateway owns, all in the ``gateway`` schema.

Quota columns are NULL when the settings' default applies.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from vectrion_common.db import service_metadata

metadata = service_metadata("gateway")


class Role(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    ADMIN = "admin"
    MEMBER = "member"


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Uploading, deleting and reprocessing are tenant-admin only unless the tenant opens them to members.
    sa.Column("members_can_write_documents", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("daily_token_quota", sa.BigInteger, nullable=True),
    sa.Column("monthly_token_quota", sa.BigInteger, nullable=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column(
        "tenant_id", UUID(as_uuid=True), sa.ForeignKey(tenants.c.id, ondelete="RESTRICT"), nullable=False, index=True
    ),
    # Stored lower-cased (the CHECK makes that a fact, not a hope), so the
    # unique constraint is case-insensitive.
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("daily_token_quota", sa.BigInteger, nullable=True),
    sa.Column("monthly_token_quota", sa.BigInteger, nullable=True),
    sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    sa.CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in Role)})", name="role_known"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    # The public, non-secret part a key starts with: how a presented key finds its row.
    sa.Column("prefix", sa.Text, nullable=False, unique=True),
    # SHA-256 of the whole key: keys are 256 random bits, so a slow hash adds nothing.
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("scopes", ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


class UsageStatus(enum.StrEnum):
    RESERVED = "reserved"
    SETTLED = "settled"
    # Never settled (the gateway crashed mid-call): counted at its reservation, see reservation_sweeper.
    EXPIRED = "expired"


usage_ledger = sa.Table(
    "usage_ledger",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", UUID(as_uuid=True), nullable=False),
    sa.Column("api_key_id", UUID(as_uuid=True), nullable=True),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text, nullable=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("reserved_tokens", sa.BigInteger, nullable=False),
    # Real usage as the query service reported it; NULL while reserved.
    sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
    sa.Column("completion_tokens", sa.BigInteger, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in UsageStatus)})", name="status_known"),
    sa.Index("ix_usage_ledger_user_occurred", "user_id", "occurred_at"),
    sa.Index("ix_usage_ledger_tenant_occurred", "tenant_id", "occurred_at"),
    sa.Index("ix_usage_ledger_open_reservations", "occurred_at", postgresql_where=sa.text("status = 'reserved'")),
)
