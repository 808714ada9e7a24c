"""The gateway's Redis: one blocking connection pool and one key namespace.

A ``BlockingConnectionPool`` waits (up to ``redis_timeout_seconds``) for a free
connection instead of raising at once when many requests arrive together.
Every Redis failure surfaces as :class:`redis.RedisError` (or ``OSError``),
which each caller turns into its documented fallback; none of them becomes a 500.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from vectrion_gateway.settings import GatewaySettings

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def make_redis(settings: GatewaySettings) -> Redis:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
    )
    return Redis(connection_pool=pool)


class Keys:
    """Every key the gateway writes, under one prefix (tests use their own)."""

    def __init__(self, prefix: str) -> None:
        self._p = prefix.rstrip(":")

    def rate(self, budget: str, subject: str) -> str:
        return f"{self._p}:rl:{budget}:{subject}"

    def login_failures(self, kind: str, subject: str) -> str:
        return f"{self._p}:login:{kind}:{subject}"

    def session(self, session_id: str) -> str:
        return f"{self._p}:sess:{session_id}"

    def refresh(self, token_hash: str) -> str:
        return f"{self._p}:refresh:{token_hash}"

    def quota(self, scope: str, subject: str, period: str) -> str:
        return f"{self._p}:quota:{scope}:{subject}:{period}"

    def docset(self, tenant_id: str) -> str:
        return f"{self._p}:docset:{tenant_id}"

    def docset_settling(self, tenant_id: str) -> str:
        return f"{self._p}:docset-settling:{tenant_id}"

    def cache(self, digest: str) -> str:
        return f"{self._p}:cache:{digest}"

    def idempotency(self, subject: str, digest: str) -> str:
        return f"{self._p}:idem:{subject}:{digest}"
