"""Who is calling and may they: the one authenticator and the deny-by-default authoriser.

:func:`authorize` is an app-wide dependency (``create_app`` installs it before
any router is included, so every route gets it): it looks the matched route up
in :data:`~vectrion_gateway.permissions.ROUTE_PERMISSIONS`, refuses routes with
no entry, authenticates (``Authorization: Bearer <jwt>`` or ``X-API-Key``),
checks the permission and counts the request against its rate-limit budget.
Who a credential belongs to is remembered for a few seconds
(:mod:`~vectrion_gateway.principal_cache`, which also says how revocation stays bounded).
Routes read the result with :data:`CurrentPrincipal` (FastAPI resolves the
dependency once per request).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from vectrion_common.identity import Identity
from vectrion_common.logs import get_logger
from vectrion_gateway.access_log import response_headers
from vectrion_gateway.apikeys import hash_key, key_matches, key_prefix
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.errors import Forbidden, Unauthorized
from vectrion_gateway.models import Role
from vectrion_gateway.permissions import (
    PUBLIC,
    ROUTE_PERMISSIONS,
    ROUTE_RATE_BUDGETS,
    Permission,
    role_permissions,
)
from vectrion_gateway.ratelimit import enforce
from vectrion_gateway.repository import ApiKeyRepository, Tenant, User, UserRepository
from vectrion_gateway.tokens import AccessClaims

bearer_scheme = HTTPBearer(auto_error=False, description="an access token from POST /v1/auth/token")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key from POST /v1/api-keys")

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Quotas:
    user_daily: int | None = None
    user_monthly: int | None = None
    tenant_daily: int | None = None
    tenant_monthly: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role
    permissions: frozenset[Permission]
    api_key_id: uuid.UUID | None = None
    session_id: str | None = None
    quotas: Quotas = field(default_factory=Quotas)

    @property
    def identity(self) -> Identity:
        return Identity(self.user_id, self.tenant_id, self.role.value)

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    @property
    def rate_subject(self) -> str:
        """Rate limits apply per API key, or per user for their own logins."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"


def _principal(user: User, tenant: Tenant, granted: frozenset[Permission], **extra: object) -> Principal:
    quotas = Quotas(user.daily_token_quota, user.monthly_token_quota, tenant.daily_token_quota,
                    tenant.monthly_token_quota)
    return Principal(user.id, user.tenant_id, user.role, granted, quotas=quotas, **extra)  # type: ignore[arg-type]


async def _from_access_token(context: GatewayContext, token: str) -> Principal:
    claims = context.tokens.verify(token)  # signature and expiry: checked on every request
    cache_key = ("session", claims.session_id, claims.user_id, claims.tenant_id)
    if (cached := context.principals.get(cache_key)) is not None:
        return cached
    generation = context.principals.generation
    principal = await _session_principal(context, claims)
    context.principals.put(cache_key, principal, generation)
    return principal


async def _session_principal(context: GatewayContext, claims: AccessClaims) -> Principal:
    if not await context.login_sessions.is_live(claims.session_id):
        raise Unauthorized("invalid or expired access token")
    # Role and active flag come from the database, not the token, so a deactivated
    # or demoted user loses access within principal_cache_seconds, not at token expiry.
    async with context.sessions() as session:
        found = await UserRepository(session).get_with_tenant(claims.user_id)
    if found is None or not found[0].is_active or found[0].tenant_id != claims.tenant_id:
        raise Unauthorized("invalid or expired access token")
    user, tenant = found
    granted = role_permissions(user.role, members_can_write_documents=tenant.members_can_write_documents)
    return _principal(user, tenant, granted, session_id=claims.session_id)


async def _from_api_key(context: GatewayContext, key: str) -> Principal:
    cache_key = ("api_key", hash_key(key))  # the whole key's hash: a right prefix with a wrong secret never hits
    if (cached := context.principals.get(cache_key)) is not None:
        return cached
    generation = context.principals.generation
    principal = await _key_principal(context, key)
    context.principals.put(cache_key, principal, generation)
    return principal


async def _key_principal(context: GatewayContext, key: str) -> Principal:
    prefix = key_prefix(key)
    if prefix is None:
        raise Unauthorized("invalid API key")
    async with context.sessions() as session:
        api_key = await ApiKeyRepository(session).get_by_prefix(prefix)
        found = await UserRepository(session).get_with_tenant(api_key.user_id) if api_key else None
    if api_key is None or found is None or not key_matches(key, api_key.key_hash):
        raise Unauthorized("invalid API key")
    user, tenant = found
    if api_key.revoked_at is not None or not user.is_active:
        raise Unauthorized("invalid API key")
    # A key can do what its scopes say AND its owner may do today.
    granted = role_permissions(user.role, members_can_write_documents=tenant.members_can_write_documents)
    return _principal(user, tenant, granted & frozenset(Permission(s) for s in api_key.scopes), api_key_id=api_key.id)


async def authenticate(
    context: GatewayContext, credentials: HTTPAuthorizationCredentials | None, api_key: str | None
) -> Principal:
    # A bearer token wins over a key sent beside it (the key is then ignored, never forwarded).
    if credentials is not None:
        return await _from_access_token(context, credentials.credentials)
    if api_key:
        return await _from_api_key(context, api_key)
    raise Unauthorized("missing credentials: a bearer token or an X-API-Key")


async def authorize(
    request: Request,
    context: Annotated[GatewayContext, Depends(gateway_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal | None:
    path = getattr(request.scope.get("route"), "path", None)
    route_key = (request.method, path if isinstance(path, str) else "")
    rule = ROUTE_PERMISSIONS.get(route_key)
    if rule is None:
        log.error("authz.undeclared_route", method=request.method, route=path)
        raise Forbidden("this route declares no permission, so nobody may call it")
    if rule == PUBLIC:
        return None
    principal = await authenticate(context, credentials, api_key)
    request.state.principal = principal
    if rule not in principal.permissions:
        raise Forbidden(f"this operation needs the {rule} permission")
    budget = ROUTE_RATE_BUDGETS.get(route_key)
    if budget is not None:
        decision = await context.rate_limiter.check(budget, principal.rate_subject)
        response_headers(request).update(decision.headers())
        enforce(decision, budget)
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(authorize)]) -> Principal:
    if principal is None:  # a public route asked for a principal: a programming error, refuse safely
        raise Unauthorized("missing credentials")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
