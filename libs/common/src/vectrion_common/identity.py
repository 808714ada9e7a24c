"""Short-lived identity tokens the gateway signs for internal calls.

Internal services never trust bare headers: the gateway authenticates the
client, then forwards ``X-Vectrion-Identity: <jwt>`` signed with the shared
internal secret (HS256, audience ``vectrion-internal``, about a minute of life).
Services verify it with :class:`IdentityVerifier` as a FastAPI dependency.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Header, Request

from vectrion_common.problems import Unauthorized

IDENTITY_HEADER = "X-Vectrion-Identity"
AUDIENCE = "vectrion-internal"
ISSUER = "vectrion-gateway"
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "platform_admin"


def sign_identity(identity: Identity, secret: str, ttl_seconds: int = 60) -> str:
    now = int(time.time())
    claims = {
        "sub": str(identity.user_id),
        "tid": str(identity.tenant_id),
        "role": identity.role,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_identity(token: str, secret: str) -> Identity:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "tid", "role"]},
        )
        return Identity(uuid.UUID(claims["sub"]), uuid.UUID(claims["tid"]), str(claims["role"]))
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise Unauthorized("invalid or expired internal identity token") from exc


def current_identity(
    request: Request, token: Annotated[str | None, Header(alias=IDENTITY_HEADER)] = None
) -> Identity:
    """FastAPI dependency: the verified caller. The app stores the secret in ``app.state``."""
    if not token:
        raise Unauthorized(f"missing {IDENTITY_HEADER} header")
    secret: str = request.app.state.internal_token_secret
    return verify_identity(token, secret)


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
