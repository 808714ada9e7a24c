"""Forwarding an authenticated request to an internal service, streaming both ways.

Only an allow-list of client headers travels upstream, so the client's
``Authorization``, API key, cookies and any ``X-Vectrion-Identity`` it made up
never reach a service; the gateway adds its own signed identity instead.
Bodies are streamed (an upload is never held in memory whole), and so is the
answer (ready for SSE).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import AsyncIterable, AsyncIterator

import structlog
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from yarl import URL

from vectrion_common.identity import IDENTITY_HEADER
from vectrion_common.logs import get_logger
from vectrion_common.tracing import current_traceparent
from vectrion_common.web import REQUEST_ID_HEADER
from vectrion_gateway.auth import Principal
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.errors import UpstreamTimeout, UpstreamUnavailable
from vectrion_gateway.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, StoredResponse
from vectrion_gateway.settings import GatewaySettings
from vectrion_gateway.upstream_client import UPSTREAM_ERRORS, UpstreamResponse

# Answers up to this size with a Content-Length are relayed whole, not streamed.
BUFFERED_ANSWER_MAX_BYTES = 64 * 1024

FORWARDED_REQUEST_HEADERS = ("content-type", "content-length", "accept", "idempotency-key", "last-event-id")

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones our own server sets.
_DROPPED_RESPONSE_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"server",
        b"date",
        REQUEST_ID_HEADER.lower().encode(),
    }
)

# What an idempotent replay carries besides the body.
_STORED_HEADERS = frozenset({"content-type", "location"})

log = get_logger(__name__)


class Upstream(enum.StrEnum):
    INGEST = "ingest"
    QUERY = "query"
    GUARDRAILS = "guardrails"


def base_url(settings: GatewaySettings, upstream: Upstream) -> str:
    match upstream:
        case Upstream.INGEST:
            return settings.ingest_url
        case Upstream.QUERY:
            return settings.query_url
        case Upstream.GUARDRAILS:
            return settings.guardrails_url


def upstream_headers(request: Request, principal: Principal, context: GatewayContext) -> dict[str, str]:
    headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name)) is not None}
    headers[IDENTITY_HEADER] = context.identity_signer.token_for(principal.identity)
    request_id = structlog.contextvars.get_contextvars().get("request_id") or request.headers.get(REQUEST_ID_HEADER)
    if request_id:
        headers[REQUEST_ID_HEADER] = str(request_id)
    headers.update(current_traceparent())
    return headers


def upstream_url(base_url: str, request: Request) -> URL:
    # The raw path and query string, exactly as the client sent them (encoded=True: no re-quoting).
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    url = base_url.rstrip("/") + raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return URL(url, encoded=True)


async def open_upstream(
    request: Request,
    principal: Principal,
    context: GatewayContext,
    upstream_service: Upstream,
    content: bytes | AsyncIterable[bytes] | None,
) -> UpstreamResponse:
    """Send the request on; the answer's body is left unread (streamed)."""
    try:
        return await context.upstream.request(
            request.method,
            upstream_url(base_url(context.settings, upstream_service), request),
            headers=upstream_headers(request, principal, context),
            data=content,
            allow_redirects=False,
        )
    except TimeoutError as exc:
        log.warning("proxy.upstream_timeout", upstream=upstream_service.value, error=type(exc).__name__)
        raise UpstreamTimeout(f"the {upstream_service.value} service did not answer in time") from exc
    except UPSTREAM_ERRORS as exc:
        log.warning("proxy.upstream_unavailable", upstream=upstream_service.value, error=type(exc).__name__)
        raise UpstreamUnavailable(f"the {upstream_service.value} service is unavailable") from exc


def passthrough_headers(upstream: UpstreamResponse) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in upstream.raw_headers if k.lower() not in _DROPPED_RESPONSE_HEADERS]


def stream_response(upstream: UpstreamResponse, background: BackgroundTask | None = None) -> StreamingResponse:
    async def close() -> None:
        upstream.release()
        if background is not None:
            await background()

    response = StreamingResponse(_relay(upstream), status_code=upstream.status, background=BackgroundTask(close))
    response.raw_headers = passthrough_headers(upstream)
    return response


async def relay_response(upstream: UpstreamResponse) -> Response:
    """Small answers of a known length are read whole and sent in one go (a streamed response costs
    a disconnect-watching task per request); anything else, SSE included, is streamed."""
    length = upstream.headers.get("content-length", "")
    if (
        length.isdigit()
        and int(length) <= BUFFERED_ANSWER_MAX_BYTES
        and not upstream.headers.get("content-type", "").startswith("text/event-stream")
    ):
        return buffered_response(upstream, await read_body(upstream))
    return stream_response(upstream)


async def read_body(upstream: UpstreamResponse) -> bytes:
    """The whole (decoded-as-sent) answer; for the small JSON answers the gateway inspects."""
    try:
        return await upstream.read()
    except UPSTREAM_ERRORS as exc:
        raise UpstreamUnavailable("the upstream service broke off its answer") from exc
    finally:
        upstream.release()


def buffered_response(upstream: UpstreamResponse, body: bytes) -> Response:
    response = Response(body, status_code=upstream.status)
    response.raw_headers = [
        *((k, v) for k, v in passthrough_headers(upstream) if k.lower() != b"content-length"),
        (b"content-length", str(len(body)).encode()),
    ]
    return response


class HashingStream:
    """Relays a request body while hashing it; ``digest`` is set once it was read to the end."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.digest: str | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._source:
            self._hash.update(chunk)
            yield chunk
        self.digest = self._hash.hexdigest()


async def body_digest(source: AsyncIterator[bytes]) -> str:
    digest = hashlib.sha256()
    async for chunk in source:
        digest.update(chunk)
    return digest.hexdigest()


def has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


def idempotency_key_for(request: Request, principal: Principal, context: GatewayContext) -> str | None:
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if request.method != "POST" or not value:
        return None
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    return context.idempotency.key(principal.rate_subject, request.method, raw_path.decode("latin-1"), value)


def replay_response(stored: StoredResponse) -> Response:
    return Response(stored.body, status_code=stored.status, headers={**stored.headers, REPLAYED_HEADER: "true"})


def storable(upstream: UpstreamResponse, body: bytes) -> StoredResponse:
    kept = {k: v for k, v in upstream.headers.items() if k.lower() in _STORED_HEADERS}
    return StoredResponse(upstream.status, kept, body)


async def forward(
    request: Request, principal: Principal, context: GatewayContext, upstream_service: Upstream
) -> Response:
    """Stream a request through to its service and the answer back.

    A POST with an ``Idempotency-Key`` is deduplicated: its body is hashed on
    the way through and the (small, JSON) answer buffered and stored.
    """
    idem_key = idempotency_key_for(request, principal, context)
    claim = await context.idempotency.claim(idem_key) if idem_key else None
    if claim is None:
        content = request.stream() if has_body(request) else None
        return await relay_response(await open_upstream(request, principal, context, upstream_service, content))
    if isinstance(claim, StoredResponse):
        claim.check_same_request(await body_digest(request.stream()))
        return replay_response(claim)
    hashed = HashingStream(request.stream())
    try:
        upstream = await open_upstream(
            request, principal, context, upstream_service, hashed if has_body(request) else None
        )
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            await context.idempotency.release(claim)
            return stream_response(upstream)
        body = await read_body(upstream)
    except BaseException:
        await context.idempotency.release(claim)
        raise
    digest = hashed.digest if has_body(request) else hashlib.sha256().hexdigest()
    if digest is None:  # the service answered before reading the whole body: nothing safe to store
        await context.idempotency.release(claim)
    else:
        await context.idempotency.complete(claim, digest, storable(upstream, body))
    return buffered_response(upstream, body)


async def _relay(upstream: UpstreamResponse) -> AsyncIterator[bytes]:
    # Raw bytes: whatever content-encoding the service chose passes through untouched.
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    except UPSTREAM_ERRORS as exc:
        # Headers are already sent; all we can do is cut the stream and say why in the log.
        log.warning("proxy.stream_aborted", error=type(exc).__name__)
        raise
    finally:
        upstream.release()
