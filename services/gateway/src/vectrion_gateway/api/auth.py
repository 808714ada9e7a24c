from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from vectrion_gateway import service
from vectrion_gateway.auth import CurrentPrincipal
from vectrion_gateway.client_address import client_address
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.schemas import RefreshRequest, TokenRequest, TokenResponse

router = APIRouter(prefix="/v1/auth", tags=["auth"])

Context = Annotated[GatewayContext, Depends(gateway_context)]


def _token_response(issued: service.Login) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access.access_token,
        expires_in=issued.access.expires_in,
        refresh_token=issued.refresh_token,
    )


@router.post("/token", response_model=TokenResponse)
async def issue_token(body: TokenRequest, request: Request, context: Context) -> TokenResponse:
    address = client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        context.settings.trusted_proxies,
    )
    return _token_response(await service.login(context, body.email, body.password, address))


@router.post("/refresh", response_model=TokenResponse)
async def refresh_token(body: RefreshRequest, context: Context) -> TokenResponse:
    """Trade a refresh token (single use) for a new access token and its successor."""
    return _token_response(await service.refresh(context, body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentPrincipal, context: Context) -> Response:
    """End the caller's login session: its refresh token and access tokens stop working now."""
    await service.logout(context, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
