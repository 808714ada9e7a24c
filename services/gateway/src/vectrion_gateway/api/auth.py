from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from vectrion_gateway import service
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.schemas import TokenRequest, TokenResponse

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse)
async def issue_token(
    body: TokenRequest, context: Annotated[GatewayContext, Depends(gateway_context)]
) -> TokenResponse:
    issued = await service.login(context, body.email, body.password)
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)
