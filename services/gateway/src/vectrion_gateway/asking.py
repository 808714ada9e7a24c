"""``POST /v1/query`` through the gateway: cache, quota reservation, settlement, idempotency.

Order: (rate limit, in ``authorize``) -> idempotent replay -> cache lookup
(history-free, non-streamed questions only) -> reserve the worst case -> ask
the query service -> settle what its ``usage`` says -> store in the cache.
A cache hit spends no tokens. The request body is small (a question), so it
is read here; the answer is buffered unless it is streamed (SSE), in which
case it is relayed as it comes and settled when the stream ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from vectrion_common.logs import get_logger
from vectrion_gateway.access_log import response_headers
from vectrion_gateway.auth import Principal
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.errors import PayloadTooLarge
from vectrion_gateway.idempotency import Claim, StoredResponse
from vectrion_gateway.proxy import (
    Upstream,
    buffered_response,
    idempotency_key_for,
    open_upstream,
    passthrough_headers,
    read_body,
    replay_response,
    storable,
)
from vectrion_gateway.quotas import Reservation
from vectrion_gateway.upstream_client import UpstreamResponse

MAX_QUESTION_BODY_BYTES = 64 * 1024
MAX_STREAM_SCAN_BYTES = 1024 * 1024
CACHE_HEADER = "X-Cache"

log = get_logger(__name__)
_settlements: set[asyncio.Task[None]] = set()


async def read_capped(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body is over {limit} bytes")
    return bytes(body)


def _question(body: bytes) -> tuple[str | None, bool, bool]:
    """(question, has conversation, streamed) as far as the body says; the query service validates it."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, False, False
    if not isinstance(parsed, dict):
        return None, False, False
    question = parsed.get("question")
    return (
        (question if isinstance(question, str) else None),
        parsed.get("conversation_id") is not None,
        bool(parsed.get("stream")),
    )


def usage_of(answer: Any) -> tuple[int, int] | None:
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


class StreamUsage:
    """The usage a server-sent-event stream reports, read as the stream passes (never buffered whole):
    the ``event: answer`` of ``/v1/query`` or the last ``chat.completion.chunk`` carrying ``usage``
    of ``/v1/chat/completions``. A partial event longer than MAX_STREAM_SCAN_BYTES is skipped."""

    def __init__(self) -> None:
        self._pending = ""
        self.usage: tuple[int, int] | None = None

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk.decode("utf-8", "replace")
        *complete, self._pending = self._pending.split("\n\n")
        if len(self._pending) > MAX_STREAM_SCAN_BYTES:
            self._pending = ""
        for event in complete:
            self._read(event)

    def _read(self, event: str) -> None:
        lines = event.splitlines()
        data = "".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
        if not data or data == "[DONE]":
            return
        try:
            parsed = json.loads(data)
        except ValueError:
            return
        if "event: answer" in lines or (isinstance(parsed, dict) and parsed.get("object") == "chat.completion.chunk"):
            self.usage = usage_of(parsed) or self.usage


async def ask(request: Request, principal: Principal, context: GatewayContext) -> Response:
    body = await read_capped(request, MAX_QUESTION_BODY_BYTES)
    digest = hashlib.sha256(body).hexdigest()
    idem_key = idempotency_key_for(request, principal, context)
    claim = await context.idempotency.claim(idem_key) if idem_key else None
    if isinstance(claim, StoredResponse):
        claim.check_same_request(digest)
        return replay_response(claim)
    try:
        response = await _answer(request, principal, context, body)
    except BaseException:
        if isinstance(claim, Claim):
            await context.idempotency.release(claim)
        raise
    if isinstance(claim, Claim):
        if isinstance(response, StreamingResponse):
            await context.idempotency.release(claim)
        else:
            stored = StoredResponse(
                response.status_code, {"content-type": response.media_type or ""}, bytes(response.body)
            )
            if response.headers.get("content-type"):
                stored.headers["content-type"] = response.headers["content-type"]
            await context.idempotency.complete(claim, digest, stored)
    return response


async def _answer(request: Request, principal: Principal, context: GatewayContext, body: bytes) -> Response:
    question, in_conversation, streamed = _question(body)
    lookup = None
    if question and not in_conversation and not streamed:
        lookup = await context.cache.lookup(principal.tenant_id, principal.user_id, question)
    extra = response_headers(request)
    if lookup is not None:
        if lookup.hit is not None:
            extra[CACHE_HEADER] = "hit"
            return Response(lookup.hit.body, status_code=lookup.hit.status, media_type=lookup.hit.content_type)
        extra[CACHE_HEADER] = "miss"

    limits = context.quotas.limits(
        (principal.quotas.user_daily, principal.quotas.user_monthly),
        (principal.quotas.tenant_daily, principal.quotas.tenant_monthly),
    )
    reservation = await context.quotas.reserve(
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        api_key_id=principal.api_key_id,
        limits=limits,
        route="/v1/query",
        request_id=request.headers.get("x-request-id"),
        tokens=context.settings.query_reservation_tokens,
    )
    try:
        upstream = await open_upstream(request, principal, context, Upstream.QUERY, body)
    except BaseException:
        await context.quotas.settle(reservation, 0, 0)
        raise
    if upstream.headers.get("content-type", "").startswith("text/event-stream"):
        return _settled_stream(upstream, context, reservation)
    try:
        answer = await read_body(upstream)
    except BaseException:
        await context.quotas.settle(reservation, 0, 0)
        raise
    usage = (0, 0)
    if upstream.status == 200:
        try:
            usage = usage_of(json.loads(answer)) or _worst_case(reservation)
        except ValueError:
            usage = _worst_case(reservation)
    await context.quotas.settle(reservation, *usage)
    if lookup is not None and upstream.status == 200:
        stored = storable(upstream, answer)
        await context.cache.put(
            lookup, principal.tenant_id, stored.headers.get("content-type", "application/json"), answer
        )
    return buffered_response(upstream, answer)


def _worst_case(reservation: Reservation) -> tuple[int, int]:
    # An answer without usage numbers is charged what was reserved, never nothing.
    log.warning("quota.usage_missing", reservation_id=str(reservation.id))
    return reservation.tokens, 0


def _settled_stream(upstream: UpstreamResponse, context: GatewayContext, reservation: Reservation) -> Response:
    scanned = StreamUsage()

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.content.iter_any():
                scanned.feed(chunk)
                yield chunk
        finally:
            usage = scanned.usage if upstream.status == 200 else (0, 0)
            # A task, so the settlement survives a client that hung up mid-stream.
            task = asyncio.create_task(context.quotas.settle(reservation, *(usage or _worst_case(reservation))))
            _settlements.add(task)
            task.add_done_callback(_settlements.discard)
            upstream.release()

    async def close() -> None:
        upstream.release()

    response = StreamingResponse(relay(), status_code=upstream.status, background=BackgroundTask(close))
    response.raw_headers = passthrough_headers(upstream)
    return response
