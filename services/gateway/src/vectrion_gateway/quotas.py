"""Token quotas per user and per tenant, per UTC day and month.

A metered call reserves its worst case *before* the LLM is asked and settles
the real usage after. The reservation checks and counts all four counters
(user day/month, tenant day/month) in one Lua script, so concurrent calls can
never reserve past a limit together: spending exceeds a quota only if a call
uses more than its reservation said it could.

Redis holds the hot counters; the PostgreSQL ledger is the truth. A counter
that Redis lost (restart, eviction, expiry) is rebuilt from the ledger before
the next reservation (``SET NX``, so concurrent gateways seed it once). With
Redis down, reservations run against the ledger under a per-tenant advisory
lock: slower, equally strict.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_gateway.errors import QuotaExceeded
from vectrion_gateway.ledger import UsageRepository
from vectrion_gateway.redis_store import REDIS_ERRORS, Keys
from vectrion_gateway.settings import GatewaySettings

log = get_logger(__name__)

Scope = Literal["user", "tenant"]
Period = Literal["day", "month"]

RESERVE_LUA = """
local amount = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {-1, i} end
end
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i + 1])
  if limit >= 0 and tonumber(redis.call('GET', KEYS[i])) + amount > limit then return {0, i} end
end
for i = 1, #KEYS do redis.call('INCRBY', KEYS[i], amount) end
return {1, 0}
"""

SETTLE_LUA = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[1]) end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Counter:
    scope: Scope
    subject: uuid.UUID
    period: Period
    key: str
    limit: int | None
    since: datetime
    resets_at: datetime


@dataclass(frozen=True, slots=True)
class Reservation:
    id: uuid.UUID
    tokens: int
    counter_keys: tuple[str, ...]
    in_redis: bool


@dataclass(frozen=True, slots=True)
class Limits:
    user_daily: int | None
    user_monthly: int | None
    tenant_daily: int | None
    tenant_monthly: int | None


def _period_bounds(now: datetime) -> dict[Period, tuple[datetime, datetime, str]]:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    days_in_month = calendar.monthrange(month.year, month.month)[1]
    return {
        "day": (day, day + timedelta(days=1), day.strftime("d%Y%m%d")),
        "month": (month, month + timedelta(days=days_in_month), month.strftime("m%Y%m")),
    }


class QuotaService:
    def __init__(
        self, redis: Redis, keys: Keys, sessions: async_sessionmaker[AsyncSession], settings: GatewaySettings
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._sessions = sessions
        self._settings = settings
        self._reserve = redis.register_script(RESERVE_LUA)
        self._settle = redis.register_script(SETTLE_LUA)

    def limits(self, user: tuple[int | None, int | None], tenant: tuple[int | None, int | None]) -> Limits:
        s = self._settings
        return Limits(
            user[0] if user[0] is not None else s.default_user_daily_tokens,
            user[1] if user[1] is not None else s.default_user_monthly_tokens,
            tenant[0] if tenant[0] is not None else s.default_tenant_daily_tokens,
            tenant[1] if tenant[1] is not None else s.default_tenant_monthly_tokens,
        )

    def counters(self, user_id: uuid.UUID, tenant_id: uuid.UUID, limits: Limits, now: datetime) -> list[Counter]:
        bounds = _period_bounds(now)
        spec: list[tuple[Scope, uuid.UUID, Period, int | None]] = [
            ("user", user_id, "day", limits.user_daily),
            ("user", user_id, "month", limits.user_monthly),
            ("tenant", tenant_id, "day", limits.tenant_daily),
            ("tenant", tenant_id, "month", limits.tenant_monthly),
        ]
        return [
            Counter(scope, subject, period, self._keys.quota(scope, str(subject), bounds[period][2]), limit,
                    bounds[period][0], bounds[period][1])
            for scope, subject, period, limit in spec
        ]

    async def _spent(self, session: AsyncSession, counter: Counter) -> int:
        repo = UsageRepository(session)
        if counter.scope == "user":
            return await repo.spent_by_user(counter.subject, counter.since)
        return await repo.spent_by_tenant(counter.subject, counter.since)

    async def _seed(self, counter: Counter) -> None:
        async with self._sessions() as session:
            spent = await self._spent(session, counter)
        ttl = int((counter.resets_at - datetime.now(UTC)).total_seconds()) + 3600
        await self._redis.set(counter.key, spent, nx=True, ex=max(ttl, 60))
        log.info("quota.counter_seeded", scope=counter.scope, period=counter.period, tokens=spent)

    @staticmethod
    def _exceeded(counter: Counter) -> QuotaExceeded:
        retry = int((counter.resets_at - datetime.now(UTC)).total_seconds()) + 1
        return QuotaExceeded(
            f"the {counter.scope}'s {'daily' if counter.period == 'day' else 'monthly'} token quota "
            f"({counter.limit}) is exhausted",
            quota=f"{counter.scope}.{counter.period}",
            retry_after=max(1, retry),
        )

    async def reserve(
        self,
        *,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID,
        api_key_id: uuid.UUID | None,
        limits: Limits,
        route: str,
        request_id: str | None,
        tokens: int,
    ) -> Reservation:
        now = datetime.now(UTC)
        counters = self.counters(user_id, tenant_id, limits, now)
        reservation_id = uuid.uuid4()

        async def record(session: AsyncSession) -> None:
            await UsageRepository(session).reserve(
                reservation_id=reservation_id, tenant_id=tenant_id, user_id=user_id, api_key_id=api_key_id,
                route=route, request_id=request_id, tokens=tokens, occurred_at=now,
            )

        keys = tuple(c.key for c in counters)
        try:
            await self._reserve_in_redis(counters, tokens)
        except REDIS_ERRORS as exc:
            log.warning("quota.redis_unavailable", fallback="postgres", error=type(exc).__name__)
            async with unit_of_work(self._sessions) as session:
                repo = UsageRepository(session)
                await repo.lock_tenant(tenant_id)
                for counter in counters:
                    if counter.limit is not None and await self._spent(session, counter) + tokens > counter.limit:
                        raise self._exceeded(counter) from None
                await record(session)
            return Reservation(reservation_id, tokens, keys, in_redis=False)
        try:
            async with unit_of_work(self._sessions) as session:
                await record(session)
        except BaseException:
            await self._adjust(keys, -tokens)
            raise
        return Reservation(reservation_id, tokens, keys, in_redis=True)

    async def _reserve_in_redis(self, counters: list[Counter], tokens: int) -> None:
        limits = [-1 if c.limit is None else c.limit for c in counters]
        for _ in range(len(counters) + 1):
            status, index = await self._reserve(keys=[c.key for c in counters], args=[tokens, *limits])
            if status == 1:
                return
            if status == 0:
                raise self._exceeded(counters[int(index) - 1])
            await self._seed(counters[int(index) - 1])
        raise RuntimeError("quota counters could not be seeded")  # pragma: no cover - keys expire in days

    async def settle(self, reservation: Reservation, prompt_tokens: int, completion_tokens: int) -> None:
        """Record the real usage (0, 0 releases a call that never reached the LLM)."""
        used = max(0, prompt_tokens) + max(0, completion_tokens)
        async with unit_of_work(self._sessions) as session:
            await UsageRepository(session).settle(reservation.id, prompt_tokens, completion_tokens)
        # A reservation made without Redis was never counted there.
        await self._adjust(reservation.counter_keys, used - reservation.tokens if reservation.in_redis else used)

    async def _adjust(self, keys: tuple[str, ...], delta: int) -> None:
        if delta == 0:
            return
        try:
            await self._settle(keys=list(keys), args=[delta])
        except REDIS_ERRORS as exc:
            # The ledger has the truth; the counter is rebuilt from it once it expires.
            log.warning("quota.adjust_skipped", error=type(exc).__name__, delta=delta)

    async def spent(self, counters: list[Counter]) -> dict[tuple[Scope, Period], int]:
        async with self._sessions() as session:
            return {(c.scope, c.period): await self._spent(session, c) for c in counters}
