"""The guardrails app: ``uvicorn --factory vectrion_guardrails.main:create_app --port 8005``.

Stateless: no database. It answers RPC checks from the query service over
RabbitMQ and HTTP checks the gateway proxies from clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_common.logs import configure_logging, get_logger
from vectrion_common.messaging.broker import make_broker
from vectrion_common.messaging.rpc import RpcServer
from vectrion_common.messaging.topology import Topology
from vectrion_common.settings import load_settings
from vectrion_common.web import create_service_app
from vectrion_guardrails import api
from vectrion_guardrails.handlers import register_handlers
from vectrion_guardrails.policy import build_policy
from vectrion_guardrails.settings import GuardrailsSettings
from vectrion_guardrails.tenant_rules import load_policy_config

log = get_logger(__name__)


def create_app(settings: GuardrailsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(GuardrailsSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    internal_token_secret = settings.require_secret("internal_token_secret").get_secret_value()
    policy = build_policy(
        load_policy_config(settings.policy_file),
        max_input_chars=settings.max_input_chars,
        max_input_tokens=settings.max_input_tokens,
        char_flood_run=settings.char_flood_run,
        token_flood_repeats=settings.token_flood_repeats,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = make_broker(settings, app.state.tracer_provider)
        rpc = RpcServer(broker, app.state.tracer_provider)
        register_handlers(rpc, Topology(settings.broker_namespace), policy, prefetch=settings.broker_prefetch)

        async def broker_ready() -> None:
            if not await broker.ping(timeout=2.0):
                raise ConnectionError("RabbitMQ did not answer")

        await broker.start()
        await rpc.start()
        app.state.readiness_checks["broker"] = broker_ready
        log.info(
            "guardrails.started",
            policy_version=policy.version,
            tenants_with_own_rules=len(policy.tenant_rules),
            injection_threshold=policy.injection_model.threshold if policy.injection_model else None,
            unsafe_threshold=policy.unsafe_model.threshold if policy.unsafe_model else None,
        )
        try:
            yield
        finally:
            await rpc.stop()
            await broker.stop()

    app = create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
    app.state.internal_token_secret = internal_token_secret
    app.state.policy = policy
    app.state.check_roles = list(settings.check_roles)
    app.include_router(api.router)
    return app
