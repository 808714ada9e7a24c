"""What request handlers need from the running app, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_gateway.settings import GatewaySettings
from vectrion_gateway.tokens import TokenService


@dataclass(frozen=True, slots=True)
class GatewayContext:
    settings: GatewaySettings
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenService
    upstream: httpx.AsyncClient
    internal_token_secret: str


def gateway_context(request: Request) -> GatewayContext:
    context: GatewayContext = request.app.state.gateway
    return context
