"""The chunker process: one retried consumer, its outbox relay, and health/metrics endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_chunker import admin_api
from vectrion_chunker.chunk_scan import make_chunk_scanner
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.deletion import ChunkRemover
from vectrion_chunker.extraction import report_ocr_setting
from vectrion_chunker.handlers import CONSUMER, UploadHandler
from vectrion_chunker.models import outbox
from vectrion_chunker.settings import ChunkerSettings
from vectrion_common.contracts import DocumentDeletionRequestedV1, DocumentUploadedV1
from vectrion_common.logs import configure_logging
from vectrion_common.runtime import ServiceRuntime
from vectrion_common.settings import load_settings
from vectrion_common.storage import make_blob_store
from vectrion_common.threads import background_executor
from vectrion_common.web import create_service_app


def create_app(settings: ChunkerSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ChunkerSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    ocr_max_pages = settings.ocr_max_pages if report_ocr_setting(settings.ocr) else 0

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime(app, settings, consumer=CONSUMER, outbox=outbox)
        blobs = make_blob_store(settings.storage)
        extractors = background_executor("extract", nice=settings.extract_nice, max_workers=settings.broker_prefetch)
        handler = UploadHandler(
            sessions=runtime.sessions,
            blobs=blobs,
            relay=runtime.relay,
            rules=ChunkingRules(
                max_chars=settings.chunk_max_chars,
                overlap_chars=settings.chunk_overlap_chars,
                min_chars=settings.chunk_min_chars,
            ),
            embedding_batch_size=settings.embedding_batch_size,
            window_pages=settings.extract_window_pages,
            ocr_max_pages=ocr_max_pages,
            extractors=extractors,
            scanner=make_chunk_scanner(settings, runtime.broker, runtime.topology),
        )
        runtime.subscribe(DocumentUploadedV1, handler)
        runtime.subscribe(DocumentDeletionRequestedV1, ChunkRemover(runtime.sessions, runtime.relay))
        app.state.readiness_checks["storage"] = blobs.ping
        app.state.sessions = runtime.sessions
        try:
            async with runtime.running():
                yield
        finally:
            extractors.shutdown(wait=False, cancel_futures=True)

    app = create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
    app.state.internal_token_secret = settings.require_secret("internal_token_secret").get_secret_value()
    app.include_router(admin_api.router)
    return app
