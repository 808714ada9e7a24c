"""Per-caller rate limits: GCRA in one Lua script, so check-and-count is atomic in Redis.

GCRA keeps one number per caller, the theoretical arrival time (TAT). A
request is admitted when ``TAT + interval - burst * interval <= now``; then
TAT moves one interval on. ``burst`` requests pass at once, then one every
``interval``. Redis' own clock is used, so every gateway replica agrees.

When Redis is unreachable (documented choice, ARCHITECTURE "Redis (gateway)"):
- upload budget: fail closed, 503 ``rate-limiter-unavailable`` with Retry-After;
- query budget: the same algorithm in this process (:class:`LocalGcra`), so a
  replica still holds each caller to the limit it would have in Redis.
"""

from __future__ import annotations

import enum
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from redis.asyncio import Redis

from vectrion_common.logs import get_logger
from vectrion_gateway.errors import RateLimited, RateLimiterUnavailable
from vectrion_gateway.redis_store import REDIS_ERRORS, Keys
from vectrion_gateway.settings import GatewaySettings

log = get_logger(__name__)


class Budget(enum.StrEnum):
    QUERY = "query"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class Policy:
    burst: int
    interval_us: int  # one request's worth of time


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float
    reset_s: float

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_s)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return headers


GCRA_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, new_tat - now}
"""


def _decision(policy: Policy, allowed: int, remaining: int, retry_us: int, reset_us: int) -> Decision:
    return Decision(bool(allowed), policy.burst, max(0, int(remaining)), retry_us / 1e6, reset_us / 1e6)


class LocalGcra:
    """The Lua script's arithmetic in one process, for the query fallback. Bounded in memory."""

    def __init__(self, max_subjects: int = 100_000) -> None:
        self._tat: OrderedDict[str, int] = OrderedDict()
        self._max = max_subjects

    def check(self, key: str, policy: Policy) -> Decision:
        now = time.monotonic_ns() // 1000
        tolerance = policy.interval_us * policy.burst
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + policy.interval_us
        allow_at = new_tat - tolerance
        if now < allow_at:
            return _decision(policy, 0, 0, allow_at - now, tat - now)
        self._tat[key] = new_tat
        self._tat.move_to_end(key)
        while len(self._tat) > self._max:
            self._tat.popitem(last=False)
        return _decision(policy, 1, (tolerance - (new_tat - now)) // policy.interval_us, 0, new_tat - now)


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, settings: GatewaySettings) -> None:
        self._redis = redis
        self._keys = keys
        self._script = redis.register_script(GCRA_LUA)
        self._local = LocalGcra()
        self.policies = {
            Budget.QUERY: Policy(settings.rate_limit_query_burst, int(60e6 / settings.rate_limit_query_per_minute)),
            Budget.UPLOAD: Policy(settings.rate_limit_upload_burst, int(60e6 / settings.rate_limit_upload_per_minute)),
        }

    async def check(self, budget: Budget, subject: str) -> Decision:
        """Count one request of ``subject`` against ``budget``; raises nothing, see :meth:`enforce`."""
        policy = self.policies[budget]
        key = self._keys.rate(budget.value, subject)
        try:
            allowed, remaining, retry_us, reset_us = await self._script(
                keys=[key], args=[policy.interval_us, policy.burst]
            )
        except REDIS_ERRORS as exc:
            if budget is Budget.UPLOAD:
                log.warning("ratelimit.redis_unavailable", budget=budget.value, fallback="fail_closed",
                            error=type(exc).__name__)
                raise RateLimiterUnavailable("rate limiting is unavailable; retry shortly") from exc
            log.warning("ratelimit.redis_unavailable", budget=budget.value, fallback="local",
                        error=type(exc).__name__)
            return self._local.check(key, policy)
        return _decision(policy, allowed, remaining, retry_us, reset_us)


def enforce(decision: Decision, budget: Budget) -> None:
    if not decision.allowed:
        raise RateLimited(f"the {budget.value} rate limit is exhausted; retry after the Retry-After delay")
