"""Client access tokens: HS256 JWTs with a ``kid`` header.

The algorithm is pinned on verification (a token claiming ``alg: none`` or any
other algorithm is refused), and the ``kid`` must name a key we hold, which is
how keys rotate: new tokens are signed with the one active key, tokens signed
with a retired key stay valid until they expire. Every token names its login
session (``sid``), so logging out revokes it before expiry.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from vectrion_gateway.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "vectrion-gateway"
AUDIENCE = "vectrion-api"
VERIFIED_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: str
    expires_at: int  # Unix seconds


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


class TokenService:
    def __init__(self, keys: dict[str, str], active_kid: str, ttl_seconds: int) -> None:
        if active_kid not in keys:
            raise ValueError(f"active key id {active_kid!r} has no key")
        self._keys = dict(keys)
        self._active_kid = active_kid
        self._ttl = ttl_seconds
        self._verified: dict[str, AccessClaims] = {}

    def issue(self, user_id: uuid.UUID, tenant_id: uuid.UUID, session_id: str) -> IssuedToken:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "tid": str(tenant_id),
            "sid": session_id,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(
            claims, self._keys[self._active_kid], algorithm=ALGORITHM, headers={"kid": self._active_kid}
        )
        return IssuedToken(token, self._ttl)

    def verify(self, token: str) -> AccessClaims:
        # A token already verified is the same bytes with the same signature: only its expiry
        # can change the answer. Saves the JWT parse + HMAC on every request of a session.
        known = self._verified.get(token)
        if known is not None and time.time() < known.expires_at:
            return known
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_MAX:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None:
                raise Unauthorized("unknown token key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "tid", "sid"]},
            )
            return AccessClaims(
                uuid.UUID(claims["sub"]), uuid.UUID(claims["tid"]), str(claims["sid"]), int(claims["exp"])
            )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise Unauthorized("invalid or expired access token") from exc
