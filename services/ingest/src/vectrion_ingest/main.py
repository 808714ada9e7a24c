"""The ingest service: ``uvicorn --factory vectrion_ingest.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_common.contracts import DocumentDeletionConfirmedV1
from vectrion_common.logs import configure_logging
from vectrion_common.messaging.dead_letters import DeadLetterStore
from vectrion_common.periodic import Periodic
from vectrion_common.runtime import ServiceRuntime
from vectrion_common.settings import load_settings
from vectrion_common.storage import make_blob_store
from vectrion_common.web import create_service_app
from vectrion_ingest import admin_api
from vectrion_ingest.api import router
from vectrion_ingest.dead_letters import DeadLetterAdmin
from vectrion_ingest.deletion import housekeeping
from vectrion_ingest.handlers import CONSUMER, register_handlers, report_failures
from vectrion_ingest.lifecycle import StuckDocumentSweeper
from vectrion_ingest.models import outbox
from vectrion_ingest.reconcile import Reconciler
from vectrion_ingest.service import DocumentService
from vectrion_ingest.settings import IngestSettings


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or load_settings(IngestSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime(app, settings, consumer=CONSUMER, outbox=outbox)
        runtime.consumers.report_failure = report_failures(runtime.sessions)
        register_handlers(runtime)
        blobs = make_blob_store(settings.storage)
        app.state.relay = runtime.relay
        app.state.documents = DocumentService(
            runtime.sessions,
            blobs,
            max_upload_bytes=settings.max_upload_bytes,
            max_pages=settings.max_pages,
            delete_wait_seconds=settings.delete_wait_seconds,
            on_commit=runtime.wake_relay,
        )
        runtime.subscribe(DocumentDeletionConfirmedV1, app.state.documents.deletion.confirm)
        app.state.readiness_checks["storage"] = blobs.ping
        dead_letter_store = DeadLetterStore(settings.rabbitmq_url.get_secret_value(), runtime.topology)
        app.state.dead_letters = DeadLetterAdmin(dead_letter_store, runtime.sessions)
        sweeper = StuckDocumentSweeper(
            runtime.sessions,
            stuck_after_seconds=settings.stuck_after_seconds,
            max_attempts=settings.max_pipeline_attempts,
            on_commit=runtime.wake_relay,
        )
        app.state.sweeper = sweeper
        # Stuck documents, then stuck deletions and retention, on one schedule.
        sweeping = Periodic(
            "stuck-document-sweeper",
            settings.sweep_interval_seconds,
            [sweeper.sweep, *housekeeping(app.state.documents.deletion, settings)],
        )
        app.state.reconciler = Reconciler(
            runtime.sessions,
            blobs,
            chunker_url=settings.chunker_url,
            query_url=settings.query_url,
            token_secret=app.state.internal_token_secret,
            orphan_file_grace_seconds=settings.orphan_file_grace_seconds,
            on_commit=runtime.wake_relay,
        )
        async with runtime.running():
            await dead_letter_store.start()
            sweeping.start()
            try:
                yield
            finally:
                await sweeping.stop()
                await dead_letter_store.close()

    app = create_service_app(
        settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint, title="vectrion-ingest"
    )
    app.state.internal_token_secret = settings.require_secret("internal_token_secret").get_secret_value()
    app.include_router(router)
    app.include_router(admin_api.router)
    app.include_router(admin_api.reconcile_router)
    return app
