"""The gateway's client-facing errors; the common problem handler maps them to HTTP once."""

from __future__ import annotations

from vectrion_common.problems import Conflict, Forbidden, NotFound, ProblemError, Unauthorized, UpstreamUnavailable

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidCredentials",
    "NotFound",
    "ProblemError",
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
