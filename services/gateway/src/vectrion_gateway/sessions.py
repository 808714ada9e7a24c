"""Login sessions in Redis: refresh tokens (rotated on use) and logout.

A session is ``sess:<sid>`` (who it belongs to); each refresh token maps its
SHA-256 to the sid and is consumed with GETDEL, so a refresh token works once.
Access tokens carry the sid: logout deletes the session, and both its refresh
token and every access token issued in it stop working at once.

Redis down: login and refresh answer 503 (a token that logout could not revoke
is never handed out); checking a presented access token's session fails open,
because the token itself expires within ``access_token_ttl_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from vectrion_common.logs import get_logger
from vectrion_gateway.errors import SessionStoreUnavailable, Unauthorized
from vectrion_gateway.redis_store import REDIS_ERRORS, Keys

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user_id: uuid.UUID
    tenant_id: uuid.UUID


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_seconds

    async def create(self, user_id: uuid.UUID, tenant_id: uuid.UUID) -> tuple[Session, str]:
        """A new session and its first refresh token."""
        session = Session(uuid.uuid4().hex, user_id, tenant_id)
        value = json.dumps({"user_id": str(user_id), "tenant_id": str(tenant_id)})
        refresh_token = secrets.token_urlsafe(32)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._keys.session(session.session_id), value, ex=self._ttl)
                pipe.set(self._keys.refresh(_digest(refresh_token)), session.session_id, ex=self._ttl)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("session.store_unavailable", error=type(exc).__name__)
            raise SessionStoreUnavailable("cannot start a session now; retry shortly") from exc
        return session, refresh_token

    async def rotate(self, refresh_token: str) -> tuple[Session, str]:
        """Consume ``refresh_token`` (once) and hand out its successor in the same session."""
        try:
            raw_sid = await self._redis.getdel(self._keys.refresh(_digest(refresh_token)))
            if raw_sid is None:
                raise Unauthorized("invalid or expired refresh token")
            sid = raw_sid.decode() if isinstance(raw_sid, bytes) else str(raw_sid)
            raw = await self._redis.get(self._keys.session(sid))
            if raw is None:
                raise Unauthorized("invalid or expired refresh token")
            data = json.loads(raw)
            new_token = secrets.token_urlsafe(32)
            await self._redis.set(self._keys.refresh(_digest(new_token)), sid, ex=self._ttl)
            await self._redis.expire(self._keys.session(sid), self._ttl)
        except REDIS_ERRORS as exc:
            log.warning("session.store_unavailable", error=type(exc).__name__)
            raise SessionStoreUnavailable("cannot refresh now; retry shortly") from exc
        return Session(sid, uuid.UUID(data["user_id"]), uuid.UUID(data["tenant_id"])), new_token

    async def revoke(self, session_id: str) -> None:
        try:
            await self._redis.delete(self._keys.session(session_id))
        except REDIS_ERRORS as exc:
            raise SessionStoreUnavailable("cannot log out now; retry shortly") from exc

    async def is_live(self, session_id: str) -> bool:
        try:
            return bool(await self._redis.exists(self._keys.session(session_id)))
        except REDIS_ERRORS as exc:
            log.warning("session.check_skipped", reason="redis unavailable", error=type(exc).__name__)
            return True
