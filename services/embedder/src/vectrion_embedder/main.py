"""The embedder process: the model, a batch consumer, an RPC responder, health/metrics endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from faststream.rabbit import Channel

from vectrion_common.contracts import EmbeddingRequestedV1, EmbedRequest, EmbedResponse
from vectrion_common.logs import configure_logging, get_logger
from vectrion_common.messaging.broker import declare_consumer_topology, make_broker
from vectrion_common.messaging.topology import Topology
from vectrion_common.settings import load_settings
from vectrion_common.web import create_service_app
from vectrion_embedder.handlers import CONSUMER, RPC_NAME, handle_embed_rpc, handle_embedding_requested
from vectrion_embedder.model import Embedder, make_embedder
from vectrion_embedder.settings import EmbedderSettings

BROKER_PING_TIMEOUT = 2.0

log = get_logger(__name__)


def create_app(settings: EmbedderSettings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """``embedder`` lets a caller (tests, a benchmark) share one loaded model between apps."""
    settings = settings or load_settings(EmbedderSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model: Embedder = embedder if embedder is not None else await asyncio.to_thread(make_embedder, settings)
        log.info("embedder.model_loaded", model_id=model.model_id, dimension=model.dimension)
        app.state.embedder = model
        topology = Topology(settings.broker_namespace)
        broker = make_broker(settings, app.state.tracer_provider)

        @broker.subscriber(topology.consumer_queue(CONSUMER, EmbeddingRequestedV1), exchange=topology.events)
        async def on_embedding_requested(request: EmbeddingRequestedV1) -> None:
            await handle_embedding_requested(request, model, broker, topology)

        # Own channel and prefetch: queries are never queued behind ingestion batches.
        @broker.subscriber(topology.rpc_queue(RPC_NAME), channel=Channel(prefetch_count=settings.rpc_prefetch))
        async def on_embed(request: EmbedRequest) -> EmbedResponse:
            return await handle_embed_rpc(request, model)

        async def broker_ready() -> None:
            if not await broker.ping(BROKER_PING_TIMEOUT):
                raise ConnectionError("broker did not answer")

        async def model_ready() -> None:
            await model.embed(["ready"])

        app.state.readiness_checks.update({"broker": broker_ready, "model": model_ready})
        await broker.connect()
        await declare_consumer_topology(broker, topology, CONSUMER, [EmbeddingRequestedV1])
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()

    return create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
