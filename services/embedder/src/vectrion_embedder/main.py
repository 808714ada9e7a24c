"""The embedder process: the model, a batch consumer, an RPC responder, health/metrics endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_common.contracts import EmbeddingRequestedV1, EmbeddingRequestedV2, EmbedRequest, EmbedResponse
from vectrion_common.logs import configure_logging, get_logger
from vectrion_common.runtime import ServiceRuntime
from vectrion_common.settings import load_settings
from vectrion_common.web import create_service_app
from vectrion_embedder.batching import BatchingEmbedder
from vectrion_embedder.handlers import CONSUMER, RPC_NAME, handle_embed_rpc, handle_embedding_requested
from vectrion_embedder.model import Embedder, make_embedder
from vectrion_embedder.settings import EmbedderSettings

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
        # Stateless: a message given up on is reported by publishing document.failed.v1 directly.
        runtime = ServiceRuntime(app, settings, consumer=CONSUMER)
        broker, topology = runtime.broker, runtime.topology

        async def on_embedding_requested(request: EmbeddingRequestedV1 | EmbeddingRequestedV2) -> None:
            await handle_embedding_requested(request, model, broker, topology)

        runtime.subscribe(EmbeddingRequestedV2, on_embedding_requested)
        # Batches queued by a chunker of the previous release (v1) during an upgrade.
        runtime.subscribe(EmbeddingRequestedV1, on_embedding_requested)

        # Own channel and prefetch: queries are never queued behind ingestion batches. Request/reply
        # is not retried here: the caller has a deadline and decides.
        # Concurrent RPCs (up to rpc_prefetch) share model calls instead of each starting its own.
        rpc_model = BatchingEmbedder(model)

        async def on_embed(request: EmbedRequest) -> EmbedResponse:
            return await handle_embed_rpc(request, rpc_model)

        runtime.rpc.route(topology.rpc_queue(RPC_NAME), EmbedRequest, on_embed, prefetch=settings.rpc_prefetch)

        async def model_ready() -> None:
            # The query lane: a probe must not wait for an ingestion batch to finish.
            await model.embed(["ready"], urgent=True)

        app.state.readiness_checks["model"] = model_ready
        async with runtime.running():
            yield

    return create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
