"""SQL of the usage ledger: one row per metered call, reserved first, settled with real usage.

A reserved row counts its worst case until it is settled with what the
query service reported; so does an expired one (a reservation a crash left
open, see :mod:`vectrion_gateway.reservation_sweeper`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_gateway.models import UsageStatus, usage_ledger

_SPENT = sa.case(
    (
        usage_ledger.c.status == UsageStatus.SETTLED.value,
        sa.func.coalesce(usage_ledger.c.prompt_tokens, 0) + sa.func.coalesce(usage_ledger.c.completion_tokens, 0),
    ),
    else_=usage_ledger.c.reserved_tokens,
)


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def reserve(
        self,
        *,
        reservation_id: uuid.UUID,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        api_key_id: uuid.UUID | None,
        route: str,
        request_id: str | None,
        tokens: int,
        occurred_at: datetime,
    ) -> None:
        await self._session.execute(
            sa.insert(usage_ledger).values(
                id=reservation_id, tenant_id=tenant_id, user_id=user_id, api_key_id=api_key_id, route=route,
                request_id=request_id, reserved_tokens=tokens, status=UsageStatus.RESERVED.value,
                occurred_at=occurred_at,
            )
        )

    async def settle(self, reservation_id: uuid.UUID, prompt_tokens: int, completion_tokens: int) -> None:
        # An expired reservation (see reservation_sweeper) still takes its real usage when it arrives.
        open_statuses = (UsageStatus.RESERVED.value, UsageStatus.EXPIRED.value)
        await self._session.execute(
            sa.update(usage_ledger)
            .where(usage_ledger.c.id == reservation_id, usage_ledger.c.status.in_(open_statuses))
            .values(
                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                status=UsageStatus.SETTLED.value, settled_at=sa.func.now(),
            )
        )

    async def expire_reservations(self, older_than: timedelta) -> int:
        """Mark reservations made more than ``older_than`` ago expired (still counted at their reservation)."""
        result = await self._session.execute(
            sa.update(usage_ledger)
            .where(
                usage_ledger.c.status == UsageStatus.RESERVED.value,
                usage_ledger.c.occurred_at < sa.func.now() - older_than,
            )
            .values(status=UsageStatus.EXPIRED.value, settled_at=sa.func.now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def spent(self, column: Any, subject: uuid.UUID, since: datetime) -> int:
        total = await self._session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(_SPENT), 0)).where(column == subject,
                                                                      usage_ledger.c.occurred_at >= since)
        )
        return int(total or 0)

    async def spent_by_user(self, user_id: uuid.UUID, since: datetime) -> int:
        return await self.spent(usage_ledger.c.user_id, user_id, since)

    async def spent_by_tenant(self, tenant_id: uuid.UUID, since: datetime) -> int:
        return await self.spent(usage_ledger.c.tenant_id, tenant_id, since)

    async def lock_tenant(self, tenant_id: uuid.UUID) -> None:
        """Serialise reservations of one tenant for this transaction (the no-Redis path)."""
        await self._session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"vectrion-quota:{tenant_id}")))
        )
