"""What request handlers need from the running app, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_gateway.cache import ResponseCache
from vectrion_gateway.idempotency import IdempotencyStore
from vectrion_gateway.identity_tokens import IdentitySigner
from vectrion_gateway.principal_cache import PrincipalCache
from vectrion_gateway.quotas import QuotaService
from vectrion_gateway.ratelimit import RateLimiter
from vectrion_gateway.redis_store import Keys
from vectrion_gateway.sessions import SessionStore
from vectrion_gateway.settings import GatewaySettings
from vectrion_gateway.throttle import LoginThrottle
from vectrion_gateway.tokens import TokenService
from vectrion_gateway.upstream_client import UpstreamClient

if TYPE_CHECKING:
    from vectrion_gateway.auth import Principal


@dataclass(frozen=True, slots=True)
class GatewayContext:
    settings: GatewaySettings
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenService
    upstream: UpstreamClient
    redis: Redis
    keys: Keys
    rate_limiter: RateLimiter
    login_sessions: SessionStore
    login_throttle: LoginThrottle
    quotas: QuotaService
    cache: ResponseCache
    idempotency: IdempotencyStore
    principals: PrincipalCache[Principal]
    identity_signer: IdentitySigner


async def gateway_context(request: Request) -> GatewayContext:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, per request.
    context: GatewayContext = request.app.state.gateway
    return context
