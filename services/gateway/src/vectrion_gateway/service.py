"""Rules of login, sessions, API keys and administration; the endpoints stay thin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_gateway.apikeys import generate_key
from vectrion_gateway.auth import Principal
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.errors import Conflict, Forbidden, InvalidCredentials, NotFound, ProblemError, Unauthorized
from vectrion_gateway.models import Role
from vectrion_gateway.passwords import hash_password, needs_rehash, verify_password
from vectrion_gateway.permissions import KEY_GRANTABLE, Permission
from vectrion_gateway.repository import ApiKey, ApiKeyRepository, Tenant, TenantRepository, User, UserRepository
from vectrion_gateway.tokens import IssuedToken

log = get_logger(__name__)


class UnknownTenant(ProblemError):
    status, type_, title = 422, "unknown-tenant", "Unknown tenant"


class InvalidScope(ProblemError):
    status, type_, title = 422, "invalid-scope", "An API key cannot hold this permission"


class SelfLockout(ProblemError):
    status, type_, title = 422, "self-lockout", "You cannot demote or deactivate yourself"


@dataclass(frozen=True, slots=True)
class Login:
    access: IssuedToken
    refresh_token: str


# --- login and sessions ---------------------------------------------------------------


async def login(context: GatewayContext, email: str, password: str, address: str) -> Login:
    email = email.strip()
    await context.login_throttle.check(email, address)
    async with context.sessions() as session:
        user = await UserRepository(session).get_by_email(email)
    # The session is released before the deliberately slow hash check.
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        await context.login_throttle.failed(email, address)
        log.info("auth.login_failed")
        raise InvalidCredentials()
    await context.login_throttle.succeeded(email, address)
    if needs_rehash(user.password_hash):
        new_hash = await hash_password(password)
        async with unit_of_work(context.sessions) as session:
            await UserRepository(session).set_password_hash(user.id, new_hash)
    login_session, refresh_token = await context.login_sessions.create(user.id, user.tenant_id)
    log.info("auth.login", user_id=str(user.id), tenant_id=str(user.tenant_id), session_id=login_session.session_id)
    return Login(context.tokens.issue(user.id, user.tenant_id, login_session.session_id), refresh_token)


async def refresh(context: GatewayContext, refresh_token: str) -> Login:
    login_session, new_refresh_token = await context.login_sessions.rotate(refresh_token)
    async with context.sessions() as session:
        user = await UserRepository(session).get(login_session.user_id)
    if user is None or not user.is_active or user.tenant_id != login_session.tenant_id:
        await context.login_sessions.revoke(login_session.session_id)
        context.principals.clear()
        raise Unauthorized("invalid or expired refresh token")
    log.info("auth.refreshed", user_id=str(user.id), session_id=login_session.session_id)
    return Login(context.tokens.issue(user.id, user.tenant_id, login_session.session_id), new_refresh_token)


async def logout(context: GatewayContext, principal: Principal) -> None:
    if principal.session_id is not None:
        await context.login_sessions.revoke(principal.session_id)
        context.principals.clear()
        log.info("auth.logout", user_id=str(principal.user_id), session_id=principal.session_id)


# --- API keys --------------------------------------------------------------------------


async def create_api_key(
    context: GatewayContext, principal: Principal, name: str, scopes: list[Permission] | None
) -> tuple[ApiKey, str]:
    wanted = set(scopes) if scopes is not None else set(KEY_GRANTABLE & principal.permissions)
    if not wanted <= KEY_GRANTABLE:
        raise InvalidScope(f"not grantable to a key: {sorted(wanted - KEY_GRANTABLE)}")
    if not wanted <= principal.permissions:
        raise Forbidden(f"you do not hold: {sorted(wanted - principal.permissions)}")
    new = generate_key()
    async with unit_of_work(context.sessions) as session:
        api_key = await ApiKeyRepository(session).insert(
            user_id=principal.user_id, tenant_id=principal.tenant_id, name=name, prefix=new.prefix,
            key_hash=new.key_hash, scopes=sorted(wanted),
        )
    log.info("api_key.created", api_key_id=str(api_key.id), user_id=str(principal.user_id))
    return api_key, new.key


async def list_api_keys(context: GatewayContext, principal: Principal) -> list[ApiKey]:
    async with context.sessions() as session:
        return await ApiKeyRepository(session).list_for_user(principal.user_id)


async def revoke_api_key(context: GatewayContext, principal: Principal, key_id: uuid.UUID) -> None:
    async with unit_of_work(context.sessions) as session:
        found = await ApiKeyRepository(session).revoke(key_id, principal.user_id)
    context.principals.clear()
    if not found:  # someone else's key looks exactly like a missing one
        raise NotFound(f"API key {key_id} not found")
    log.info("api_key.revoked", api_key_id=str(key_id), user_id=str(principal.user_id))


# --- tenants ---------------------------------------------------------------------------


async def create_tenant(context: GatewayContext, name: str) -> Tenant:
    async with unit_of_work(context.sessions) as session:
        tenant = await TenantRepository(session).insert(name)
    if tenant is None:
        raise Conflict(f"a tenant named {name!r} exists")
    log.info("tenant.created", tenant_id=str(tenant.id))
    return tenant


async def list_tenants(context: GatewayContext) -> list[Tenant]:
    async with context.sessions() as session:
        return await TenantRepository(session).list()


async def update_tenant(context: GatewayContext, tenant_id: uuid.UUID, changes: dict[str, Any]) -> Tenant:
    async with unit_of_work(context.sessions) as session:
        repo = TenantRepository(session)
        tenant = await repo.update(tenant_id, changes) if changes else await repo.get(tenant_id)
    context.principals.clear()  # quotas and member write rights live in cached principals
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    log.info("tenant.updated", tenant_id=str(tenant_id), fields=sorted(changes))
    return tenant


# --- users -----------------------------------------------------------------------------


def _check_grantable_role(principal: Principal, role: Role) -> None:
    if role is Role.PLATFORM_ADMIN and not principal.is_platform_admin:
        raise Forbidden("only a platform admin can grant the platform_admin role")


async def create_user(
    context: GatewayContext, principal: Principal, *, email: str, password: str, role: Role,
    tenant_id: uuid.UUID | None,
) -> User:
    tenant_id = tenant_id or principal.tenant_id
    if not principal.is_platform_admin and tenant_id != principal.tenant_id:
        raise NotFound(f"tenant {tenant_id} not found")
    _check_grantable_role(principal, role)
    password_hash = await hash_password(password)
    async with unit_of_work(context.sessions) as session:
        if await TenantRepository(session).get(tenant_id) is None:
            raise UnknownTenant(f"no tenant {tenant_id}")
        user = await UserRepository(session).insert(
            tenant_id=tenant_id, email=email, password_hash=password_hash, role=role
        )
    if user is None:
        raise Conflict("a user with this email exists")
    log.info("user.created", user_id=str(user.id), tenant_id=str(tenant_id), role=role.value)
    return user


async def list_users(context: GatewayContext, principal: Principal, tenant_id: uuid.UUID | None = None) -> list[User]:
    if not principal.is_platform_admin:
        if tenant_id is not None and tenant_id != principal.tenant_id:
            raise NotFound(f"tenant {tenant_id} not found")
        tenant_id = principal.tenant_id
    async with context.sessions() as session:
        return await UserRepository(session).list(tenant_id)


async def update_user(
    context: GatewayContext, principal: Principal, user_id: uuid.UUID, changes: dict[str, Any]
) -> User:
    if "role" in changes:
        if changes["role"] is None:
            raise ProblemError("role cannot be null")
        _check_grantable_role(principal, changes["role"])
        changes["role"] = changes["role"].value
    if "is_active" in changes and changes["is_active"] is None:
        raise ProblemError("is_active cannot be null")
    if user_id == principal.user_id and (
        changes.get("is_active") is False or ("role" in changes and changes["role"] != principal.role.value)
    ):
        raise SelfLockout("ask another admin to change your own role or active flag")
    async with unit_of_work(context.sessions) as session:
        repo = UserRepository(session)
        target = await repo.get(user_id)
        if target is None or (not principal.is_platform_admin and target.tenant_id != principal.tenant_id):
            raise NotFound(f"user {user_id} not found")
        if target.role is Role.PLATFORM_ADMIN and not principal.is_platform_admin:
            raise Forbidden("only a platform admin can change a platform admin")
        user = await repo.update(user_id, changes) if changes else target
    context.principals.clear()  # role, active flag and quotas live in cached principals
    assert user is not None
    log.info("user.updated", user_id=str(user_id), by=str(principal.user_id), fields=sorted(changes))
    return user
