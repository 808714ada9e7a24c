"""The gateway app: ``uvicorn --factory vectrion_gateway.main:create_app --port 8000``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
from fastapi import FastAPI

from vectrion_common.db import make_engine, make_sessionmaker, ping
from vectrion_common.logs import configure_logging, get_logger
from vectrion_common.settings import load_settings
from vectrion_common.web import create_service_app
from vectrion_gateway.api import admin, auth, proxy
from vectrion_gateway.bootstrap import bootstrap_admin
from vectrion_gateway.context import GatewayContext
from vectrion_gateway.settings import GatewaySettings
from vectrion_gateway.tokens import TokenService

log = get_logger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or load_settings(GatewaySettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    # Both secrets are checked before anything starts, so a misconfigured
    # gateway stops with a message that names the variable to set.
    jwt_secret = settings.require_secret("jwt_secret").get_secret_value()
    internal_token_secret = settings.require_secret("internal_token_secret").get_secret_value()
    tokens = TokenService({settings.jwt_key_id: jwt_secret}, settings.jwt_key_id, settings.access_token_ttl_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url(), settings.db_schema, settings.db_pool_size)
        upstream = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.upstream_connect_timeout_seconds,
                read=settings.upstream_read_timeout_seconds,
                write=settings.upstream_write_timeout_seconds,
                pool=settings.upstream_pool_timeout_seconds,
            ),
            limits=httpx.Limits(max_connections=settings.upstream_max_connections),
            follow_redirects=False,
            trust_env=False,  # internal calls never go through an HTTP(S)_PROXY from the environment
        )
        try:
            sessions = make_sessionmaker(engine)
            await bootstrap_admin(sessions, settings)
            app.state.gateway = GatewayContext(settings, sessions, tokens, upstream, internal_token_secret)
            app.state.readiness_checks["db"] = partial(ping, engine)
            log.info("gateway.started")
            yield
        finally:
            await upstream.aclose()
            await engine.dispose()

    app = create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(proxy.router)
    return app
