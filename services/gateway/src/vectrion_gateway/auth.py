"""Who is calling: the bearer-token authenticator and the role checks.

``current_principal`` is the one place credentials become a :class:`Principal`;
API keys (``X-API-Key``) will be a second authenticator tried here, and rate
limits / quotas dependencies that take a ``Principal``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vectrion_common.identity import Identity
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.errors import Forbidden, Unauthorized
from vectrion_gateway.models import Role
from vectrion_gateway.repository import UserRepository

bearer_scheme = HTTPBearer(auto_error=False, description="an access token from POST /v1/auth/token")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role

    @property
    def identity(self) -> Identity:
        return Identity(self.user_id, self.tenant_id, self.role.value)

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN


async def current_principal(
    context: Annotated[GatewayContext, Depends(gateway_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    claims = context.tokens.verify(credentials.credentials)
    # Role and active flag come from the database, not the token, so a
    # deactivated or demoted user loses access at once, not at token expiry.
    async with context.sessions() as session:
        user = await UserRepository(session).get(claims.user_id)
    if user is None or not user.is_active or user.tenant_id != claims.tenant_id:
        raise Unauthorized("invalid or expired access token")
    return Principal(user.id, user.tenant_id, user.role)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_platform_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_platform_admin:
        raise Forbidden("this operation needs the platform_admin role")
    return principal


PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
