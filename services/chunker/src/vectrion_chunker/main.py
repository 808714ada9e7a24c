"""The chunker process: one FastStream consumer, its outbox relay, and health/metrics endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_chunker.chunk_scan import make_chunk_scanner
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.handlers import CONSUMER, UploadHandler
from vectrion_chunker.models import outbox
from vectrion_chunker.settings import ChunkerSettings
from vectrion_common.contracts import DocumentUploadedV1
from vectrion_common.db import make_engine, make_sessionmaker, ping
from vectrion_common.logs import configure_logging
from vectrion_common.messaging.broker import declare_consumer_topology, make_broker
from vectrion_common.messaging.outbox import OutboxRelay
from vectrion_common.messaging.topology import Topology
from vectrion_common.settings import load_settings
from vectrion_common.storage import make_blob_store
from vectrion_common.web import create_service_app

BROKER_PING_TIMEOUT = 2.0


def create_app(settings: ChunkerSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ChunkerSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url(), settings.db_schema, settings.db_pool_size)
        sessions = make_sessionmaker(engine)
        blobs = make_blob_store(settings.storage)
        topology = Topology(settings.broker_namespace)
        broker = make_broker(settings, app.state.tracer_provider)
        relay = OutboxRelay(sessions, outbox, broker, topology)
        handler = UploadHandler(
            sessions=sessions,
            blobs=blobs,
            relay=relay,
            rules=ChunkingRules(
                max_chars=settings.chunk_max_chars,
                overlap_chars=settings.chunk_overlap_chars,
                min_chars=settings.chunk_min_chars,
            ),
            embedding_batch_size=settings.embedding_batch_size,
            scanner=make_chunk_scanner(settings, broker, topology),
        )

        @broker.subscriber(topology.consumer_queue(CONSUMER, DocumentUploadedV1), exchange=topology.events)
        async def on_document_uploaded(upload: DocumentUploadedV1) -> None:
            await handler(upload)

        async def broker_ready() -> None:
            if not await broker.ping(BROKER_PING_TIMEOUT):
                raise ConnectionError("broker did not answer")

        app.state.readiness_checks.update(
            {"db": lambda: ping(engine), "broker": broker_ready, "storage": blobs.ping}
        )
        await broker.connect()
        await declare_consumer_topology(broker, topology, CONSUMER, [DocumentUploadedV1])
        await broker.start()
        relay.start()
        try:
            yield
        finally:
            await relay.stop()
            await broker.stop()
            await engine.dispose()

    return create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
