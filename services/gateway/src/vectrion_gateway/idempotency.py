"""``Idempotency-Key`` on POSTs: the first response is stored and replayed for retries.

Keys are scoped to the caller (user or API key) and the request path. A retry
with the same key and the same body gets the stored response back (header
``Idempotent-Replayed: true``); the same key with a different body is refused
(422 ``idempotency-key-reused``); a retry while the first is still running gets
409 ``idempotency-key-in-use``. Responses of 5xx or that could not be stored
free the key, so the client may retry. Without Redis, requests run
un-deduplicated (logged).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from redis.asyncio import Redis

from vectrion_common.logs import get_logger
from vectrion_gateway.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from vectrion_gateway.redis_store import REDIS_ERRORS, Keys
from vectrion_gateway.settings import GatewaySettings

log = get_logger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_PENDING = b'{"state": "pending"}'
# Pending marks outlive the slowest upstream answer, so a crashed request frees its key eventually.
_PENDING_MARGIN_SECONDS = 30


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    body_sha256: str = ""

    def check_same_request(self, body_sha256: str) -> None:
        if self.body_sha256 != body_sha256:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key until :meth:`IdempotencyStore.complete` or :meth:`release`."""

    key: str


class IdempotencyStore:
    def __init__(self, redis: Redis, keys: Keys, settings: GatewaySettings) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = settings.idempotency_ttl_seconds
        self._pending_ttl = int(settings.upstream_read_timeout_seconds) + _PENDING_MARGIN_SECONDS
        self.max_body_bytes = settings.idempotency_max_body_bytes

    def key(self, subject: str, method: str, path: str, idempotency_key: str) -> str:
        digest = hashlib.sha256(json.dumps([method, path, idempotency_key]).encode()).hexdigest()
        return self._keys.idempotency(subject, digest)

    async def claim(self, key: str) -> Claim | StoredResponse | None:
        """Own the key (first request), or the stored outcome to compare against.

        None means Redis is unavailable: go on without idempotency.
        """
        try:
            if await self._redis.set(key, _PENDING, nx=True, ex=self._pending_ttl):
                return Claim(key)
            raw = await self._redis.get(key)
        except REDIS_ERRORS as exc:
            log.warning("idempotency.skipped", reason="redis unavailable", error=type(exc).__name__)
            return None
        if raw is None:  # expired between the two calls: treat as in progress, the client retries
            raise IdempotencyKeyInUse("a request with this Idempotency-Key is in progress; retry shortly")
        stored = json.loads(raw)
        if stored.get("state") != "done":
            raise IdempotencyKeyInUse("a request with this Idempotency-Key is in progress; retry shortly")
        return StoredResponse(
            stored["status"], stored["headers"], base64.b64decode(stored["body"]), stored["body_sha256"]
        )

    async def complete(self, claim: Claim, body_sha256: str, response: StoredResponse) -> None:
        if response.status >= 500 or len(response.body) > self.max_body_bytes:
            await self.release(claim)
            return
        value = {
            "state": "done",
            "body_sha256": body_sha256,
            "status": response.status,
            "headers": response.headers,
            "body": base64.b64encode(response.body).decode(),
        }
        try:
            await self._redis.set(claim.key, json.dumps(value), ex=self._ttl)
        except REDIS_ERRORS as exc:
            log.warning("idempotency.store_failed", error=type(exc).__name__)

    async def release(self, claim: Claim) -> None:
        try:
            await self._redis.delete(claim.key)
        except REDIS_ERRORS as exc:
            log.warning("idempotency.release_failed", error=type(exc).__name__)
