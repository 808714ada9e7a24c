"""Tables the gateway owns, all in the ``gateway`` schema.

API keys, quotas and the usage ledger will get their own tables (and their own
migration) beside these; nothing here needs to change for them.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

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
    sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    sa.CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in Role)})", name="role_known"),
)
