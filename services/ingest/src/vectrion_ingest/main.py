"""The ingest service: ``uvicorn --factory vectrion_ingest.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_common.db import make_engine, make_sessionmaker, ping
from vectrion_common.logs import configure_logging
from vectrion_common.messaging.broker import declare_consumer_topology, make_broker
from vectrion_common.messaging.outbox import OutboxRelay
from vectrion_common.messaging.topology import Topology
from vectrion_common.settings import load_settings
from vectrion_common.storage import make_blob_store
from vectrion_common.web import create_service_app
from vectrion_ingest.api import router
from vectrion_ingest.handlers import CONSUMED_EVENTS, CONSUMER, register_handlers
from vectrion_ingest.models import outbox
from vectrion_ingest.service import DocumentService
from vectrion_ingest.settings import IngestSettings

BROKER_PING_TIMEOUT_SECONDS = 2.0


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or load_settings(IngestSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url(), settings.db_schema, settings.db_pool_size)
        sessions = make_sessionmaker(engine)
        blobs = make_blob_store(settings.storage)
        topology = Topology(settings.broker_namespace)
        broker = make_broker(settings, app.state.tracer_provider)
        register_handlers(broker, topology, sessions)
        relay = OutboxRelay(sessions, outbox, broker, topology)
        app.state.relay = relay
        app.state.documents = DocumentService(
            sessions,
            blobs,
            max_upload_bytes=settings.max_upload_bytes,
            max_pages=settings.max_pages,
            on_commit=relay.wake,
        )

        async def broker_ready() -> None:
            if not await broker.ping(BROKER_PING_TIMEOUT_SECONDS):
                raise ConnectionError("RabbitMQ did not answer")

        app.state.readiness_checks.update(db=lambda: ping(engine), broker=broker_ready, storage=blobs.ping)
        try:
            await broker.connect()
            await declare_consumer_topology(broker, topology, CONSUMER, CONSUMED_EVENTS)
            await broker.start()
            relay.start()
            yield
        finally:
            await relay.stop()
            await broker.stop()
            await engine.dispose()

    app = create_service_app(
        settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint, title="vectrion-ingest"
    )
    app.state.internal_token_secret = settings.require_secret("internal_token_secret").get_secret_value()
    app.include_router(router)
    return app
