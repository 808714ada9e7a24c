"""Forwarding an authenticated request to an internal service, streaming both ways.

Only an allow-list of client headers travels upstream, so the client's
``Authorization``, API key, cookies and any ``X-Vectrion-Identity`` it made up
never reach a service; the gateway adds its own signed identity instead.
Bodies are streamed (an upload is never held in memory whole), and so is the
answer (ready for SSE).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator

import httpx
import structlog
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from vectrion_common.identity import IDENTITY_HEADER, sign_identity
from vectrion_common.logs import get_logger
from vectrion_common.tracing import current_traceparent
from vectrion_common.web import REQUEST_ID_HEADER
from vectrion_gateway.auth import Principal
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.errors import UpstreamTimeout, UpstreamUnavailable
from vectrion_gateway.settings import GatewaySettings

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
    headers[IDENTITY_HEADER] = sign_identity(
        principal.identity, context.internal_token_secret, context.settings.internal_token_ttl_seconds
    )
    request_id = structlog.contextvars.get_contextvars().get("request_id") or request.headers.get(REQUEST_ID_HEADER)
    if request_id:
        headers[REQUEST_ID_HEADER] = str(request_id)
    headers.update(current_traceparent())
    return headers


def upstream_url(base_url: str, request: Request) -> httpx.URL:
    # The raw path and query string, exactly as the client sent them.
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    return httpx.URL(base_url.rstrip("/") + raw_path.decode("latin-1"), query=request.scope.get("query_string", b""))


async def forward(
    request: Request, principal: Principal, context: GatewayContext, upstream_service: Upstream
) -> StreamingResponse:
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    upstream_request = context.upstream.build_request(
        request.method,
        upstream_url(base_url(context.settings, upstream_service), request),
        headers=upstream_headers(request, principal, context),
        content=request.stream() if has_body else None,
    )
    try:
        upstream = await context.upstream.send(upstream_request, stream=True)
    except httpx.TimeoutException as exc:
        log.warning("proxy.upstream_timeout", upstream=upstream_service.value, error=type(exc).__name__)
        raise UpstreamTimeout(f"the {upstream_service.value} service did not answer in time") from exc
    except httpx.TransportError as exc:
        log.warning("proxy.upstream_unavailable", upstream=upstream_service.value, error=type(exc).__name__)
        raise UpstreamUnavailable(f"the {upstream_service.value} service is unavailable") from exc

    response = StreamingResponse(
        _relay(upstream), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    response.raw_headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in _DROPPED_RESPONSE_HEADERS]
    return response


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    # Raw bytes: whatever content-encoding the service chose passes through untouched.
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.TransportError as exc:
        # Headers are already sent; all we can do is cut the stream and say why in the log.
        log.warning("proxy.stream_aborted", error=type(exc).__name__)
        raise
    finally:
        await upstream.aclose()

