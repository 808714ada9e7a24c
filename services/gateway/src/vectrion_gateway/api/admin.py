from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from vectrion_gateway import service
from vectrion_gateway.auth import PlatformAdmin
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.schemas import Created, TenantCreate, TenantList, TenantOut, UserCreate, UserList, UserOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Context = Annotated[GatewayContext, Depends(gateway_context)]


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=Created)
async def create_tenant(body: TenantCreate, _: PlatformAdmin, context: Context) -> Created:
    tenant = await service.create_tenant(context, body.name)
    return Created(id=tenant.id)


@router.get("/tenants", response_model=TenantList)
async def list_tenants(_: PlatformAdmin, context: Context) -> TenantList:
    return TenantList(items=[TenantOut.model_validate(t) for t in await service.list_tenants(context)])


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(body: UserCreate, _: PlatformAdmin, context: Context) -> UserOut:
    user = await service.create_user(
        context, email=body.email, password=body.password, role=body.role, tenant_id=body.tenant_id
    )
    return UserOut.model_validate(user)


@router.get("/users", response_model=UserList)
async def list_users(_: PlatformAdmin, context: Context, tenant_id: uuid.UUID | None = None) -> UserList:
    return UserList(items=[UserOut.model_validate(u) for u in await service.list_users(context, tenant_id)])
