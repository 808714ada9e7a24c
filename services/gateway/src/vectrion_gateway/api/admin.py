from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from vectrion_gateway import service
from vectrion_gateway.auth import CurrentPrincipal
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.schemas import (
    Created,
    TenantCreate,
    TenantList,
    TenantOut,
    TenantPatch,
    UserCreate,
    UserList,
    UserOut,
    UserPatch,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Context = Annotated[GatewayContext, Depends(gateway_context)]


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=Created)
async def create_tenant(body: TenantCreate, _: CurrentPrincipal, context: Context) -> Created:
    tenant = await service.create_tenant(context, body.name)
    return Created(id=tenant.id)


@router.get("/tenants", response_model=TenantList)
async def list_tenants(_: CurrentPrincipal, context: Context) -> TenantList:
    return TenantList(items=[TenantOut.model_validate(t) for t in await service.list_tenants(context)])


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
async def update_tenant(tenant_id: uuid.UUID, body: TenantPatch, _: CurrentPrincipal, context: Context) -> TenantOut:
    """Document writes for members, token quotas (null: the gateway default)."""
    changes = body.model_dump(include=body.model_fields_set)
    if changes.get("members_can_write_documents", False) is None:
        changes.pop("members_can_write_documents")
    return TenantOut.model_validate(await service.update_tenant(context, tenant_id, changes))


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(body: UserCreate, principal: CurrentPrincipal, context: Context) -> UserOut:
    """Platform admins: any tenant; tenant admins: their own tenant, roles up to admin."""
    user = await service.create_user(
        context, principal, email=body.email, password=body.password, role=body.role, tenant_id=body.tenant_id
    )
    return UserOut.model_validate(user)


@router.get("/users", response_model=UserList)
async def list_users(principal: CurrentPrincipal, context: Context, tenant_id: uuid.UUID | None = None) -> UserList:
    users = await service.list_users(context, principal, tenant_id)
    return UserList(items=[UserOut.model_validate(u) for u in users])


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: uuid.UUID, body: UserPatch, principal: CurrentPrincipal, context: Context) -> UserOut:
    """Role, active flag, token quotas (null: the tenant/gateway default). Other tenants' users answer 404."""
    changes = body.model_dump(include=body.model_fields_set)
    return UserOut.model_validate(await service.update_user(context, principal, user_id, changes))
