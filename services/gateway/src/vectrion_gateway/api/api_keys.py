from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from vectrion_gateway import service
from vectrion_gateway.auth import CurrentPrincipal
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])

Context = Annotated[GatewayContext, Depends(gateway_context)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, principal: CurrentPrincipal, context: Context) -> ApiKeyCreated:
    """A new key for the caller; `key` is in this answer only, send it as `X-API-Key`."""
    api_key, key = await service.create_api_key(context, principal, body.name, body.scopes)
    return ApiKeyCreated(**ApiKeyOut.model_validate(api_key).model_dump(), key=key)


@router.get("", response_model=ApiKeyList)
async def list_api_keys(principal: CurrentPrincipal, context: Context) -> ApiKeyList:
    return ApiKeyList(items=[ApiKeyOut.model_validate(k) for k in await service.list_api_keys(context, principal)])


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, principal: CurrentPrincipal, context: Context) -> Response:
    await service.revoke_api_key(context, principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
