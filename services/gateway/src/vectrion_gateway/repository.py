"""SQL for tenants, users and API keys. Functions flush; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_gateway.models import Role, api_keys, tenants, users


@dataclass(frozen=True, slots=True)
class Tenant:
    id: uuid.UUID
    name: str
    created_at: datetime
    members_can_write_documents: bool = False
    daily_token_quota: int | None = None
    monthly_token_quota: int | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    password_hash: str
    role: Role
    is_active: bool
    created_at: datetime
    daily_token_quota: int | None = None
    monthly_token_quota: int | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    key_hash: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


def _tenant(row: Any) -> Tenant:
    return Tenant(
        row.id, row.name, row.created_at, row.members_can_write_documents, row.daily_token_quota,
        row.monthly_token_quota,
    )


def _user(row: Any) -> User:
    return User(
        row.id, row.tenant_id, row.email, row.password_hash, Role(row.role), row.is_active, row.created_at,
        row.daily_token_quota, row.monthly_token_quota,
    )


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        row.id, row.user_id, row.tenant_id, row.name, row.prefix, row.key_hash, list(row.scopes), row.created_at,
        row.revoked_at,
    )


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(self, name: str) -> Tenant | None:
        """The new tenant, or None if the name is taken."""
        row = (
            await self._session.execute(
                insert(tenants).values(name=name).on_conflict_do_nothing(index_elements=[tenants.c.name])
                .returning(*tenants.c)
            )
        ).first()
        return _tenant(row) if row else None

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        row = (await self._session.execute(sa.select(tenants).where(tenants.c.id == tenant_id))).first()
        return _tenant(row) if row else None

    async def get_by_name(self, name: str) -> Tenant | None:
        row = (await self._session.execute(sa.select(tenants).where(tenants.c.name == name))).first()
        return _tenant(row) if row else None

    async def list(self) -> list[Tenant]:
        rows = await self._session.execute(sa.select(tenants).order_by(tenants.c.created_at, tenants.c.name))
        return [_tenant(r) for r in rows]

    async def update(self, tenant_id: uuid.UUID, values: dict[str, Any]) -> Tenant | None:
        row = (
            await self._session.execute(
                sa.update(tenants).where(tenants.c.id == tenant_id).values(**values).returning(*tenants.c)
            )
        ).first()
        return _tenant(row) if row else None


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(self, *, tenant_id: uuid.UUID, email: str, password_hash: str, role: Role) -> User | None:
        """The new user, or None if the email is taken."""
        row = (
            await self._session.execute(
                insert(users)
                .values(tenant_id=tenant_id, email=email.lower(), password_hash=password_hash, role=role.value)
                .on_conflict_do_nothing(index_elements=[users.c.email])
                .returning(*users.c)
            )
        ).first()
        return _user(row) if row else None

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = (await self._session.execute(sa.select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_with_tenant(self, user_id: uuid.UUID) -> tuple[User, Tenant] | None:
        """The user and their tenant in one round trip (every authenticated request does this)."""
        t = tenants.alias("t")
        row = (
            await self._session.execute(
                sa.select(
                    users,
                    t.c.name.label("t_name"),
                    t.c.created_at.label("t_created_at"),
                    t.c.members_can_write_documents.label("t_members_can_write_documents"),
                    t.c.daily_token_quota.label("t_daily_token_quota"),
                    t.c.monthly_token_quota.label("t_monthly_token_quota"),
                )
                .join(t, t.c.id == users.c.tenant_id)
                .where(users.c.id == user_id)
            )
        ).first()
        if row is None:
            return None
        tenant = Tenant(
            row.tenant_id, row.t_name, row.t_created_at, row.t_members_can_write_documents, row.t_daily_token_quota,
            row.t_monthly_token_quota,
        )
        return _user(row), tenant

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._session.execute(sa.select(users).where(users.c.email == email.lower()))).first()
        return _user(row) if row else None

    async def list(self, tenant_id: uuid.UUID | None = None) -> list[User]:
        query = sa.select(users).order_by(users.c.created_at, users.c.email)
        if tenant_id is not None:
            query = query.where(users.c.tenant_id == tenant_id)
        return [_user(r) for r in await self._session.execute(query)]

    async def platform_admin_exists(self) -> bool:
        found = await self._session.scalar(
            sa.select(sa.literal(True)).where(users.c.role == Role.PLATFORM_ADMIN.value).limit(1)
        )
        return bool(found)

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self._session.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    async def update(self, user_id: uuid.UUID, values: dict[str, Any]) -> User | None:
        row = (
            await self._session.execute(
                sa.update(users).where(users.c.id == user_id).values(**values).returning(*users.c)
            )
        ).first()
        return _user(row) if row else None


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(
        self, *, user_id: uuid.UUID, tenant_id: uuid.UUID, name: str, prefix: str, key_hash: str, scopes: list[str]
    ) -> ApiKey:
        row = (
            await self._session.execute(
                insert(api_keys)
                .values(user_id=user_id, tenant_id=tenant_id, name=name, prefix=prefix, key_hash=key_hash,
                        scopes=scopes)
                .returning(*api_keys.c)
            )
        ).one()
        return _api_key(row)

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = (await self._session.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix))).first()
        return _api_key(row) if row else None

    async def list_for_user(self, user_id: uuid.UUID) -> list[ApiKey]:
        rows = await self._session.execute(
            sa.select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.created_at)
        )
        return [_api_key(r) for r in rows]

    async def revoke(self, key_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Revoke one of ``user_id``'s keys; False if there is no such key of theirs."""
        row = (
            await self._session.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
                .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, sa.func.now()))
                .returning(api_keys.c.id)
            )
        ).first()
        return row is not None
