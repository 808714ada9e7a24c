"""Answer cache in Redis.

The key holds what an answer depends on: the tenant, the asking user (unless
``cache_share_within_tenant``; the query service shows each user their own
private documents as well as the tenant's), the normalised question and the
answerer's model/prompt version; the stored value also carries the tenant's
document-set version it was computed under.

The tenant's document-set version is bumped whenever a document write
(upload, delete, reprocess) succeeds through the gateway and whenever a
document lifecycle event says the searchable set changed (indexed, failed,
deletion requested, deleted: :mod:`vectrion_gateway.handlers`). An answer is
stored with the version read before it was computed, and served only while
that is still the tenant's version. Optionally (``cache_settle_seconds``, for a
gateway run without those events) a write also opens a window in which no
answer is stored.

Only history-free questions (no ``conversation_id``) are cached. Without Redis
the cache is simply skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from vectrion_common.logs import get_logger
from vectrion_gateway.redis_store import REDIS_ERRORS, Keys
from vectrion_gateway.settings import GatewaySettings

log = get_logger(__name__)

_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.]+$")


def normalise_question(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).casefold()
    return _TRAILING.sub("", _SPACES.sub(" ", text).strip())


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Lookup:
    """Where this question's answer lives, the document-set version it must match, and the hit."""

    key: str
    version: bytes
    hit: CachedAnswer | None


class ResponseCache:
    def __init__(self, redis: Redis, keys: Keys, settings: GatewaySettings) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings

    def key_for(self, tenant_id: uuid.UUID, user_id: uuid.UUID, question: str) -> str:
        scope = "*" if self._settings.cache_share_within_tenant else str(user_id)
        material = json.dumps([str(tenant_id), scope, self._settings.answer_model_version,
                               normalise_question(question)])
        return self._keys.cache(hashlib.sha256(material.encode()).hexdigest())

    async def lookup(self, tenant_id: uuid.UUID, user_id: uuid.UUID, question: str) -> Lookup | None:
        """One round trip: the tenant's version and the stored answer, a hit only if they match.

        None when caching is off or Redis is away. The version is in the stored value, not the key,
        so both are read together (the key does not depend on a value read first).
        """
        if not self._settings.cache_enabled:
            return None
        key = self.key_for(tenant_id, user_id, question)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._keys.docset(str(tenant_id)))
                pipe.get(key)
                version, stored = await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("cache.skipped", reason="redis unavailable", error=type(exc).__name__)
            return None
        current = version if isinstance(version, bytes) else b"0"
        hit = None
        if isinstance(stored, bytes):
            stored_version, _, rest = stored.partition(b"\n")
            content_type, _, body = rest.partition(b"\n")
            if stored_version == current:
                hit = CachedAnswer(200, content_type.decode(), body)
        return Lookup(key, current, hit)

    async def put(self, lookup: Lookup, tenant_id: uuid.UUID, content_type: str, body: bytes) -> bool:
        """Store an answer computed after ``lookup``, under the version read then: if documents changed
        meanwhile, the version moved on and the entry is never served."""
        if len(body) > self._settings.cache_max_body_bytes:
            return False
        value = lookup.version + b"\n" + content_type.encode() + b"\n" + body
        try:
            if await self._redis.exists(self._keys.docset_settling(str(tenant_id))):
                return False
            await self._redis.set(lookup.key, value, ex=self._settings.cache_ttl_seconds)
        except REDIS_ERRORS:
            return False
        return True

    async def invalidate(self, tenant_id: uuid.UUID, *, settle: bool = False) -> None:
        """Make every cached answer of the tenant unreachable (a new version); raises Redis errors."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._keys.docset(str(tenant_id)))
            if settle and self._settings.cache_settle_seconds:
                pipe.set(self._keys.docset_settling(str(tenant_id)), 1, ex=self._settings.cache_settle_seconds)
            await pipe.execute()

    async def documents_changed(self, tenant_id: uuid.UUID) -> None:
        """After a document write through the gateway: invalidate, never fail the request for it."""
        try:
            await self.invalidate(tenant_id, settle=True)
        except REDIS_ERRORS as exc:
            log.error("cache.invalidation_failed", tenant_id=str(tenant_id), error=type(exc).__name__)
