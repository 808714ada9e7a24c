"""Rules of login and administration; the endpoints stay thin."""

from __future__ import annotations

import uuid

from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.errors import Conflict, InvalidCredentials, ProblemError
from vectrion_gateway.models import Role
from vectrion_gateway.passwords import hash_password, needs_rehash, verify_password
from vectrion_gateway.repository import Tenant, TenantRepository, User, UserRepository
from vectrion_gateway.tokens import IssuedToken

log = get_logger(__name__)


class UnknownTenant(ProblemError):
    status, type_, title = 422, "unknown-tenant", "Unknown tenant"


async def login(context: GatewayContext, email: str, password: str) -> IssuedToken:
    async with context.sessions() as session:
        user = await UserRepository(session).get_by_email(email.strip())
    # The session is released before the deliberately slow hash check.
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        log.info("auth.login_failed")
        raise InvalidCredentials()
    if needs_rehash(user.password_hash):
        new_hash = await hash_password(password)
        async with unit_of_work(context.sessions) as session:
            await UserRepository(session).set_password_hash(user.id, new_hash)
    log.info("auth.login", user_id=str(user.id), tenant_id=str(user.tenant_id))
    return context.tokens.issue(user.id, user.tenant_id)


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


async def create_user(
    context: GatewayContext, *, email: str, password: str, role: Role, tenant_id: uuid.UUID
) -> User:
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


async def list_users(context: GatewayContext, tenant_id: uuid.UUID | None = None) -> list[User]:
    async with context.sessions() as session:
        return await UserRepository(session).list(tenant_id)
