"""The gateway app: ``uvicorn --factory vectrion_gateway.main:create_app --port 8000``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from vectrion_common.db import make_engine, make_sessionmaker, ping
from vectrion_common.logs import configure_logging, get_logger
from vectrion_common.problems import ProblemError, handle_problem
from vectrion_common.runtime import ServiceRuntime
from vectrion_common.settings import load_settings
from vectrion_common.web import create_service_app
from vectrion_gateway.access_log import AccessLogMiddleware
from vectrion_gateway.api import admin, api_keys, auth, dead_letters, openai_compat, proxy, usage
from vectrion_gateway.auth import authorize
from vectrion_gateway.bootstrap import bootstrap_admin
from vectrion_gateway.cache import ResponseCache
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.handlers import CONSUMER, register_handlers, report_failure
from vectrion_gateway.idempotency import IdempotencyStore
from vectrion_gateway.identity_tokens import IdentitySigner
from vectrion_gateway.principal_cache import PrincipalCache
from vectrion_gateway.quotas import QuotaService
from vectrion_gateway.ratelimit import RateLimiter
from vectrion_gateway.redis_store import Keys, make_redis
from vectrion_gateway.reservation_sweeper import reservation_sweeper
from vectrion_gateway.sessions import SessionStore
from vectrion_gateway.settings import GatewaySettings
from vectrion_gateway.throttle import LoginThrottle
from vectrion_gateway.tokens import TokenService
from vectrion_gateway.upstream_client import make_upstream_client

log = get_logger(__name__)


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    response = await handle_problem(request, exc)
    retry_after = exc.extra.get("retry_after") if isinstance(exc, ProblemError) else None
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    elif isinstance(exc, ProblemError) and exc.status == 503:
        response.headers["Retry-After"] = "1"
    return response


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or load_settings(GatewaySettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    # Both secrets are checked before anything starts, so a misconfigured
    # gateway stops with a message that names the variable to set.
    jwt_secret = settings.require_secret("jwt_secret").get_secret_value()
    internal_token_secret = settings.require_secret("internal_token_secret").get_secret_value()
    keys = {kid: key.get_secret_value() for kid, key in settings.jwt_retired_keys.items()}
    keys[settings.jwt_key_id] = jwt_secret
    tokens = TokenService(keys, settings.jwt_key_id, settings.access_token_ttl_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url(), settings.db_schema, settings.db_pool_size)
        upstream = make_upstream_client(settings)
        redis = make_redis(settings)
        try:
            sessions = make_sessionmaker(engine)
            await bootstrap_admin(sessions, settings)
            redis_keys = Keys(settings.redis_key_prefix)
            cache = ResponseCache(redis, redis_keys, settings)
            app.state.gateway = GatewayContext(
                settings=settings,
                sessions=sessions,
                tokens=tokens,
                upstream=upstream,
                redis=redis,
                keys=redis_keys,
                rate_limiter=RateLimiter(redis, redis_keys, settings),
                login_sessions=SessionStore(redis, redis_keys, settings.refresh_token_ttl_seconds),
                login_throttle=LoginThrottle(redis, redis_keys, settings),
                quotas=QuotaService(redis, redis_keys, sessions, settings),
                cache=cache,
                idempotency=IdempotencyStore(redis, redis_keys, settings),
                principals=PrincipalCache(settings.principal_cache_seconds),
                identity_signer=IdentitySigner(internal_token_secret, settings.internal_token_ttl_seconds),
            )
            app.state.readiness_checks["db"] = partial(ping, engine)
            sweeper = reservation_sweeper(
                sessions,
                timedelta(minutes=settings.reservation_expiry_minutes),
                settings.reservation_sweep_interval_seconds,
            )
            async with AsyncExitStack() as background:
                sweeper.start()
                background.push_async_callback(sweeper.stop)
                if settings.cache_invalidation_events:
                    # Adds the "broker" readiness check: cached answers depend on these events.
                    runtime = ServiceRuntime(app, settings, consumer=CONSUMER, report_failure=report_failure)
                    register_handlers(runtime, cache)
                    await background.enter_async_context(runtime.running())
                log.info("gateway.started", cache_invalidation_events=settings.cache_invalidation_events)
                yield
        finally:
            await upstream.close()
            await redis.aclose()
            await engine.dispose()

    app = create_service_app(
        settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint, access_log=False
    )
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_middleware(AccessLogMiddleware)
    # Deny by default: every route included from here on runs `authorize` first,
    # which refuses any route without an entry in permissions.ROUTE_PERMISSIONS.
    app.router.dependencies.append(Depends(authorize))
    # The proxied routes carry nearly all traffic: first, so each per-request route lookup (the
    # router's, the tracer's and the metrics') finds them early. No two routers share a path.
    app.include_router(proxy.router)
    app.include_router(openai_compat.router)
    app.include_router(auth.router)
    app.include_router(api_keys.router)
    app.include_router(usage.router)
    app.include_router(admin.router)
    app.include_router(dead_letters.router)
    app.include_router(dead_letters.reconcile_router)
    return app
