"""Request and response bodies of the gateway's own endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vectrion_gateway.models import Role
from vectrion_gateway.permissions import Permission

# Deliberately loose (one @, a dot in the domain, no spaces): the address is an
# identifier here, nothing is sent to it.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
TokenBudget = Annotated[int, Field(ge=0, le=10**12)]


class TokenRequest(BaseModel):
    # No NUL: PostgreSQL text cannot hold it, and the lookup failed with a 500 (found by the fuzz test).
    email: Annotated[str, StringConstraints(max_length=320, pattern=r"^[^\x00]*$")]
    password: Annotated[str, StringConstraints(max_length=1024)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str = Field(description="single use: POST /v1/auth/refresh returns its successor")


class RefreshRequest(BaseModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TenantCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TenantPatch(BaseModel):
    """Only the fields sent change; a quota set to null falls back to the gateway default."""

    members_can_write_documents: bool | None = None
    daily_token_quota: TokenBudget | None = None
    monthly_token_quota: TokenBudget | None = None


class Created(BaseModel):
    id: uuid.UUID


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime
    members_can_write_documents: bool
    daily_token_quota: int | None
    monthly_token_quota: int | None


class TenantList(BaseModel):
    items: list[TenantOut]


class UserCreate(BaseModel):
    email: Email
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]
    role: Role = Role.MEMBER
    tenant_id: uuid.UUID | None = Field(default=None, description="defaults to the caller's tenant")


class UserPatch(BaseModel):
    """Only the fields sent change; a quota set to null falls back to the tenant/gateway default."""

    role: Role | None = None
    is_active: bool | None = None
    daily_token_quota: TokenBudget | None = None
    monthly_token_quota: TokenBudget | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime
    daily_token_quota: int | None
    monthly_token_quota: int | None


class UserList(BaseModel):
    items: list[UserOut]


class ApiKeyCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    scopes: list[Permission] | None = Field(
        default=None, description="what the key may do (within its owner's role); default: all a key may hold"
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself; shown this once, only its hash is stored")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class QuotaUse(BaseModel):
    used: int
    limit: int | None
    remaining: int | None
    resets_at: datetime


class UsageScope(BaseModel):
    day: QuotaUse
    month: QuotaUse


class UsageOut(BaseModel):
    user: UsageScope
    tenant: UsageScope
