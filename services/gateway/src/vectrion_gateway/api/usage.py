from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from vectrion_gateway.auth import CurrentPrincipal
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.schemas import QuotaUse, UsageOut, UsageScope

router = APIRouter(prefix="/v1", tags=["usage"])


@router.get("/usage", response_model=UsageOut)
async def usage(principal: CurrentPrincipal, context: Annotated[GatewayContext, Depends(gateway_context)]) -> UsageOut:
    """The caller's and their tenant's token use this UTC day and month, from the ledger."""
    quotas = context.quotas
    q = principal.quotas
    limits = quotas.limits((q.user_daily, q.user_monthly), (q.tenant_daily, q.tenant_monthly))
    counters = quotas.counters(principal.user_id, principal.tenant_id, limits, datetime.now(UTC))
    spent = await quotas.spent(counters)
    uses = {
        (c.scope, c.period): QuotaUse(
            used=spent[(c.scope, c.period)],
            limit=c.limit,
            remaining=None if c.limit is None else max(0, c.limit - spent[(c.scope, c.period)]),
            resets_at=c.resets_at,
        )
        for c in counters
    }
    return UsageOut(
        user=UsageScope(day=uses[("user", "day")], month=uses[("user", "month")]),
        tenant=UsageScope(day=uses[("tenant", "day")], month=uses[("tenant", "month")]),
    )
