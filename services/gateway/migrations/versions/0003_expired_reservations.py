"""usage ledger: reservations a crash left open can be marked expired

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0002's CHECK got the naming convention's prefix twice; this one gets the name the model gives it.
_OLD_CHECK = "ck_usage_ledger_ck_usage_ledger_status_known"
_CHECK = "ck_usage_ledger_status_known"


def _replace_check(old: str, new: str, statuses: str) -> None:
    op.execute(f"ALTER TABLE gateway.usage_ledger DROP CONSTRAINT IF EXISTS {old}")
    op.execute(f"ALTER TABLE gateway.usage_ledger ADD CONSTRAINT {new} CHECK (status IN ({statuses}))")


def upgrade() -> None:
    _replace_check(_OLD_CHECK, _CHECK, "'reserved', 'settled', 'expired'")
    # The sweeper looks for old open reservations only.
    op.create_index(
        "ix_usage_ledger_open_reservations", "usage_ledger", ["occurred_at"], schema="gateway",
        postgresql_where="status = 'reserved'",
    )


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_open_reservations", "usage_ledger", schema="gateway")
    op.execute("UPDATE gateway.usage_ledger SET status = 'reserved' WHERE status = 'expired'")
    _replace_check(_CHECK, _OLD_CHECK, "'reserved', 'settled'")
