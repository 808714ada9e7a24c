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

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException

from vectrion_common.logs import bind_context, clear_context, get_logger
from vectrion_common.problems import ProblemError, handle_http, handle_problem, handle_validation
from vectrion_common.tracing import configure_tracing, instrument_app

ReadinessCheck = Callable[[], Awaitable[Any]]
REQUEST_ID_HEADER = "X-Request-ID"

log = get_logger(__name__)


def create_service_app(
    service: str,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    otlp_endpoint: str | None = None,
    title: str | None = None,
    access_log: bool = True,
) -> FastAPI:
    app = FastAPI(title=title or f"vectrion-{service}", lifespan=lifespan, version="0.1.0")
    app.state.readiness_checks = {}
    app.state.tracer_provider = configure_tracing(service, otlp_endpoint)
    app.add_exception_handler(ProblemError, handle_problem)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        bind_context(request_id=request_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            clear_context("request_id")
        response.headers[REQUEST_ID_HEADER] = request_id
        if access_log and request.url.path not in ("/healthz", "/readyz", "/metrics"):
            log.info(
                "http.request",
                request_id=request_id,
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return response

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
