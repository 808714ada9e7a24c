"""The gateway's outermost ASGI middleware: extra response headers and one access-log line per request.

Pure ASGI (no BaseHTTPMiddleware), so streamed answers pass through untouched.
Handlers and dependencies put headers that must reach the client, whatever
the outcome (``RateLimit-*``, ``Retry-After``, ``X-Cache``), in
:func:`response_headers`. The log line carries ids, never credentials: the
request's headers and body are not logged at all.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vectrion_common.logs import get_logger
from vectrion_common.web import REQUEST_ID_HEADER

log = get_logger("vectrion_gateway.access")

_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


def response_headers(request: Request) -> dict[str, str]:
    """Headers to add to this request's response (error or not)."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    headers: dict[str, str] = state.setdefault("response_headers", {})
    return headers


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        extra: dict[str, str] = state.setdefault("response_headers", {})
        started = time.perf_counter()
        status = 500
        request_id = ""

        async def send_with_headers(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in extra.items():
                    if name.lower().encode() not in present:
                        headers.append((name.encode(), value.encode()))
                request_id = next((v.decode() for k, v in headers if k.lower() == _REQUEST_ID), "")
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            path = scope.get("path", "")
            if path not in _QUIET_PATHS:
                principal = state.get("principal")
                route = getattr(scope.get("route"), "path", None)
                log.info(
                    "http.access",
                    request_id=request_id,
                    method=scope.get("method"),
                    route=route or "unmatched",
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                    user_id=str(principal.user_id) if principal else None,
                    tenant_id=str(principal.tenant_id) if principal else None,
                    api_key_id=str(principal.api_key_id) if principal and principal.api_key_id else None,
                    cache=extra.get("X-Cache"),
                )
