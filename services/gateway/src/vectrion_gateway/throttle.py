"""Login throttling: failed logins are counted per email and per client address.

Past the limit, a login is refused (429 ``login-throttled``, Retry-After) before
the password is even checked, so guessing costs the attacker the window, not
us an argon2 hash. A success clears the email's count. Without Redis the
counts live in this process (each replica then throttles on its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import time

from redis.asyncio import Redis

from vectrion_common.logs import get_logger
from vectrion_gateway.errors import LoginThrottled
from vectrion_gateway.redis_store import REDIS_ERRORS, Keys
from vectrion_gateway.settings import GatewaySettings

log = get_logger(__name__)


class LoginThrottle:
    def __init__(self, redis: Redis, keys: Keys, settings: GatewaySettings) -> None:
        self._redis = redis
        self._keys = keys
        self._window = settings.login_failure_window_seconds
        self._limits = {
            "email": settings.login_max_failures_per_email,
            "addr": settings.login_max_failures_per_address,
        }
        self._local: dict[str, tuple[int, float]] = {}

    def _subjects(self, email: str, address: str) -> dict[str, str]:
        # Hashed: Redis never holds the addresses people typed.
        return {
            "email": self._keys.login_failures("email", hashlib.sha256(email.lower().encode()).hexdigest()),
            "addr": self._keys.login_failures("addr", address),
        }

    async def check(self, email: str, address: str) -> None:
        keys = self._subjects(email, address)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys.values():
                    pipe.get(key)
                    pipe.ttl(key)
                replies = await pipe.execute()
            counts = {kind: (int(replies[2 * i] or 0), int(replies[2 * i + 1])) for i, kind in enumerate(keys)}
        except REDIS_ERRORS:
            now = time.monotonic()
            counts = {}
            for kind, key in keys.items():
                count, until = self._local.get(key, (0, now))
                counts[kind] = (count if until > now else 0, int(until - now))
        for kind, (count, ttl) in counts.items():
            if count >= self._limits[kind]:
                log.warning("auth.login_throttled", by=kind)
                raise LoginThrottled("too many failed logins; retry later", retry_after=max(1, ttl))

    async def failed(self, email: str, address: str) -> None:
        keys = self._subjects(email, address)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys.values():
                    pipe.incr(key)
                    pipe.expire(key, self._window, nx=True)
                await pipe.execute()
        except REDIS_ERRORS:
            now = time.monotonic()
            for key in keys.values():
                count, until = self._local.get(key, (0, now + self._window))
                self._local[key] = (count + 1, until) if until > now else (1, now + self._window)

    async def succeeded(self, email: str, address: str) -> None:
        key = self._subjects(email, address)["email"]
        self._local.pop(key, None)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.delete(key)
