"""SQL for tenants and users. Functions flush; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_gateway.models import Role, tenants, users


@dataclass(frozen=True, slots=True)
class Tenant:
    id: uuid.UUID
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    password_hash: str
    role: Role
    is_active: bool
    created_at: datetime


def _user(row: Any) -> User:
    return User(row.id, row.tenant_id, row.email, row.password_hash, Role(row.role), row.is_active, row.created_at)


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(self, name: str) -> Tenant | None:
        """The new tenant, or None if the name is taken."""
        row = (
            await self._session.execute(
                insert(tenants).values(name=name).on_conflict_do_nothing(index_elements=[tenants.c.name])
                .returning(tenants.c.id, tenants.c.name, tenants.c.created_at)
            )
        ).first()
        return Tenant(row.id, row.name, row.created_at) if row else None

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        row = (await self._session.execute(sa.select(tenants).where(tenants.c.id == tenant_id))).first()
        return Tenant(row.id, row.name, row.created_at) if row else None

    async def get_by_name(self, name: str) -> Tenant | None:
        row = (await self._session.execute(sa.select(tenants).where(tenants.c.name == name))).first()
        return Tenant(row.id, row.name, row.created_at) if row else None

    async def list(self) -> list[Tenant]:
        rows = await self._session.execute(sa.select(tenants).order_by(tenants.c.created_at, tenants.c.name))
        return [Tenant(r.id, r.name, r.created_at) for r in rows]


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
