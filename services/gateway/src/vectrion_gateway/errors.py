"""The gateway's client-facing errors; the common problem handler maps them to HTTP once.

Headers an error needs (``Retry-After``, ``RateLimit-*``) travel in
``request.state.response_headers``; the gateway's ASGI middleware adds them to
whatever response goes out, error or not.
"""

from __future__ import annotations

from vectrion_common.problems import Conflict, Forbidden, NotFound, ProblemError, Unauthorized, UpstreamUnavailable

__all__ = [
    "Conflict",
    "Forbidden",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InvalidCredentials",
    "LoginThrottled",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "QuotaExceeded",
    "RateLimited",
    "RateLimiterUnavailable",
    "SessionStoreUnavailable",
    "Unauthorized",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class InvalidCredentials(Unauthorized):
    """Wrong password and unknown email look exactly alike."""

    type_ = "invalid-credentials"
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("the email or password is incorrect")


class UpstreamTimeout(ProblemError):
    status, type_, title = 504, "upstream-timeout", "A dependency did not answer in time"


class RateLimited(ProblemError):
    status, type_, title = 429, "rate-limited", "Too many requests"


class LoginThrottled(ProblemError):
    status, type_, title = 429, "login-throttled", "Too many failed logins"


class QuotaExceeded(ProblemError):
    status, type_, title = 429, "quota-exceeded", "Token quota exhausted"


class RateLimiterUnavailable(ProblemError):
    status, type_, title = 503, "rate-limiter-unavailable", "Rate limiting is unavailable"


class SessionStoreUnavailable(ProblemError):
    status, type_, title = 503, "session-store-unavailable", "Sessions are unavailable"


class IdempotencyKeyReused(ProblemError):
    status, type_, title = 422, "idempotency-key-reused", "Idempotency-Key reused with a different request"


class IdempotencyKeyInUse(ProblemError):
    status, type_, title = 409, "idempotency-key-in-use", "A request with this Idempotency-Key is in progress"


class PayloadTooLarge(ProblemError):
    status, type_, title = 413, "payload-too-large", "Request body too large"
