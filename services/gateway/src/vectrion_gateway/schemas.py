"""Request and response bodies of the gateway's own endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vectrion_gateway.models import Role

# Deliberately loose (one @, a dot in the domain, no spaces): the address is an
# identifier here, nothing is sent to it.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]


class TokenRequest(BaseModel):
    email: Annotated[str, StringConstraints(max_length=320)]
    password: Annotated[str, StringConstraints(max_length=1024)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the token expires")


class TenantCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Created(BaseModel):
    id: uuid.UUID


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime


class TenantList(BaseModel):
    items: list[TenantOut]


class UserCreate(BaseModel):
    email: Email
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]
    role: Role = Role.MEMBER
    tenant_id: uuid.UUID


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime


class UserList(BaseModel):
    items: list[UserOut]
