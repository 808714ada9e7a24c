"""Recently authenticated callers, remembered in this process for a few seconds.

Without it every request reads the user and tenant from PostgreSQL (and, for
a bearer token, the login session from Redis): most of the gateway's added
latency. An entry maps a credential to the :class:`~vectrion_gateway.auth.Principal`
it proved, and is dropped after ``principal_cache_seconds``.

Revocation stays bounded (the documented guarantee):
- a change made through this gateway process (logout, API key revoked, user or
  tenant PATCHed: role, active flag, quotas) empties the cache at once, so the
  next request is checked against the database and Redis again;
- a change made elsewhere (another replica, SQL by hand) takes effect within
  ``principal_cache_seconds`` (default 5 s). Setting it to 0 turns the cache off.

Only successes are cached; a refused credential is checked again every time.
The keys hold no secret: an API key is remembered by its SHA-256, an access
token by its (already verified) session, user and tenant ids.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PrincipalCache(Generic[T]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[Hashable, tuple[float, T]] = {}
        # Bumped by clear(): a principal read from the database before a change
        # committed must not be stored after it (see put).
        self.generation = 0

    def get(self, key: Hashable) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if time.monotonic() >= expires:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: Hashable, value: T, generation: int) -> None:
        """Remember ``value`` unless the cache was cleared since ``generation`` was read."""
        if self._ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self._max:
            # Oldest insertion first (dicts keep order): bounded memory, no LRU bookkeeping per hit.
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def clear(self) -> None:
        """Forget everyone: called after any change to who may do what."""
        self._entries.clear()
        self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)
