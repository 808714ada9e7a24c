"""The signed identity the gateway forwards, reused for a few seconds per identity.

Signing costs a JWT encode on every proxied request; the same identity
(user, tenant, role) gets the same token back while it still has most of its
life (at least ``ttl - reuse`` seconds), so a service never receives a token
that is about to expire. Role changes give a new identity, hence a new token.
"""

from __future__ import annotations

import time

from vectrion_common.identity import Identity, sign_identity

MAX_REUSE_SECONDS = 10.0


class IdentitySigner:
    def __init__(self, secret: str, ttl_seconds: int, max_entries: int = 10_000) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._reuse = min(MAX_REUSE_SECONDS, ttl_seconds / 4)
        self._max = max_entries
        self._tokens: dict[Identity, tuple[float, str]] = {}

    def token_for(self, identity: Identity) -> str:
        now = time.monotonic()
        cached = self._tokens.get(identity)
        if cached is not None and now < cached[0]:
            return cached[1]
        token = sign_identity(identity, self._secret, self._ttl)
        if cached is None and len(self._tokens) >= self._max:
            self._tokens.pop(next(iter(self._tokens)))
        self._tokens[identity] = (now + self._reuse, token)
        return token
