"""RFC 9457 problem+json errors.

Each service raises subclasses of :class:`ProblemError` from its rules; one
exception handler (installed by :func:`vectrion_common.web.create_service_app`)
maps them to HTTP once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://vectrion.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """An error a client can act on. ``type_`` is the stable machine-readable slug."""

    status: int = 400
    type_: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(ProblemError):
    status, type_, title = 404, "not-found", "Not found"


class Unauthorized(ProblemError):
    status, type_, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, type_, title = 403, "forbidden", "Forbidden"


class Conflict(ProblemError):
    status, type_, title = 409, "conflict", "Conflict"


class UpstreamUnavailable(ProblemError):
    status, type_, title = 503, "upstream-unavailable", "A dependency is unavailable"


def problem_response(
    status: int,
    type_: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": PROBLEM_BASE + type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def handle_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if "retry_after" in exc.extra:  # also in the body, machine-readable
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return problem_response(exc.status, exc.type_, exc.title, exc.detail, headers=headers, **exc.extra)


async def handle_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return problem_response(
        422, "validation-error", "Invalid request", "the request body or parameters are invalid", errors=errors
    )


async def handle_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 403: "forbidden"}.get(
        exc.status_code, "http-error"
    )
    return problem_response(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=exc.headers)
