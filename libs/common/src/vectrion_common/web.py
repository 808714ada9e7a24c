"""The FastAPI skeleton every service shares.

``create_service_app`` gives a service ``/healthz`` (alive), ``/readyz`` (each
dependency answered), ``/metrics`` (Prometheus), problem+json errors, a
request id on every response and in every log line, and OpenTelemetry spans.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vectrion_common.logs import bind_context, clear_context, get_logger
from vectrion_common.problems import ProblemError, handle_http, handle_problem, handle_validation
from vectrion_common.tracing import configure_tracing, instrument_app

ReadinessCheck = Callable[[], Awaitable[Any]]
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = get_logger(__name__)


class RequestContextMiddleware:
    """A request id on every response and in every log line, and (optionally) one access-log line.

    Pure ASGI, not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs the app in a
    separate task and re-streams every response, a fixed cost on each request.
    """

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == _REQUEST_ID), "")
        request_id = request_id or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _REQUEST_ID]
                headers.append((_REQUEST_ID, request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        bind_context(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            clear_context("request_id")
            if self.access_log and scope.get("path") not in _QUIET_PATHS:
                log.info(
                    "http.request",
                    request_id=request_id,
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )


def create_service_app(
    service: str,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    otlp_endpoint: str | None = None,
    title: str | None = None,
    access_log: bool = True,
) -> FastAPI:
    # FastAPI's own per-dependency/endpoint spans cost CPU on every request and add nothing
    # across services; the server span (instrument_app) and traceparent propagation remain.
    app = FastAPI(
        title=title or f"vectrion-{service}",
        lifespan=lifespan,
        version="0.1.0",
        telemetry={"operation_spans": False},
    )
    app.state.readiness_checks = {}
    app.state.tracer_provider = configure_tracing(service, otlp_endpoint)
    app.add_exception_handler(ProblemError, handle_problem)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)

    app.add_middleware(RequestContextMiddleware, access_log=access_log)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        checks: Mapping[str, ReadinessCheck] = request.app.state.readiness_checks
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:  # any failure means "not ready", with the reason
                results[name] = f"error: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        body = {"status": "ok" if ready else "unavailable", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    Instrumentator(excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, endpoint="/metrics", include_in_schema=False
    )
    instrument_app(app, app.state.tracer_provider)
    return app
