"""The chunker's one consumer: document.uploaded.v1 -> chunks + document.chunked.v1 + embedding batches.

The slow part (read the file, extract, chunk) runs before any transaction is
open; then one transaction claims the message in the inbox, stores the chunks
and stages the outgoing events in the outbox, so either all of it happens once
or none of it does.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_chunker import repository
from vectrion_chunker.chunk_scan import ChunkScanner
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.extraction import UnreadableDocument
from vectrion_chunker.models import deleted_documents, inbox, outbox
from vectrion_chunker.outgoing import chunked_events, failed_event
from vectrion_chunker.pipeline import ChunkedDocument, chunk_document
from vectrion_common.contracts import DocumentUploadedV1, Event
from vectrion_common.db import unit_of_work
from vectrion_common.logs import bind_context, clear_context, get_logger
from vectrion_common.messaging.inbox import claim_message
from vectrion_common.messaging.outbox import OutboxRelay, add_event
from vectrion_common.storage import BlobNotFound, BlobStore
from vectrion_common.tombstones import is_deleted, lock_document

CONSUMER = "chunker"

log = get_logger(__name__)

EXTRACT_SECONDS = Histogram(
    "vectrion_chunker_extract_seconds",
    "Time to extract the text of one PDF",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
PAGES = Counter("vectrion_chunker_pages_total", "Pages extracted", ["with_text"])
CHUNKS = Counter("vectrion_chunker_chunks_total", "Chunks stored")
FLAGGED = Counter("vectrion_chunker_chunks_flagged_total", "Chunks the guardrails scan flagged (quarantined)")
OUTCOMES = Counter("vectrion_chunker_documents_total", "Uploads handled, by outcome", ["outcome"])


@dataclass(slots=True)
class UploadHandler:
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    relay: OutboxRelay | None
    rules: ChunkingRules
    embedding_batch_size: int
    scanner: ChunkScanner | None = None
    ocr_max_pages: int = 0  # 0: no OCR
    # Extraction threads (one per message in flight); lowered priority so query embeddings win the CPU.
    extractors: Executor | None = None

    async def __call__(self, upload: DocumentUploadedV1) -> None:
        bind_context(document_id=str(upload.document_id), generation=upload.generation, event_id=str(upload.event_id))
        try:
            await self._handle(upload)
        finally:
            clear_context("document_id", "generation", "event_id")

    async def _handle(self, upload: DocumentUploadedV1) -> None:
        async with self.sessions() as session:
            if await repository.was_handled(session, CONSUMER, upload.event_id):
                log.info("chunker.duplicate_skipped")
                OUTCOMES.labels("duplicate").inc()
                return
            if await is_deleted(session, deleted_documents, upload.document_id):
                log.info("chunker.deleted_document_skipped")
                OUTCOMES.labels("deleted").inc()
                return

        document: ChunkedDocument | None = None
        reason = ""
        try:
            data = await self.blobs.get(upload.storage_key)
            document = await asyncio.get_running_loop().run_in_executor(
                self.extractors,
                functools.partial(
                    chunk_document, data, upload.content_type, self.rules, ocr_max_pages=self.ocr_max_pages
                ),
            )
        except BlobNotFound:
            reason = f"the uploaded file is missing from storage (key {upload.storage_key})"
        except UnreadableDocument as exc:
            reason = str(exc)
        verdicts = None
        if document is not None and self.scanner is not None and document.chunks:
            # Network I/O before the transaction; a failure raises and is retried like any transient error.
            verdicts = await self.scanner.scan(upload.tenant_id, [c.text for c in document.chunks])

        events: list[Event]
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, upload.document_id)
            if not await claim_message(session, inbox, CONSUMER, upload.event_id):
                OUTCOMES.labels("duplicate").inc()
                return
            if await is_deleted(session, deleted_documents, upload.document_id):
                # Deleted while being extracted: nothing of it may be stored or sent on.
                OUTCOMES.labels("deleted").inc()
                return
            if document is None:
                events = [failed_event(upload, reason)]
                outcome = "failed"
            else:
                latest = await repository.latest_generation(session, upload.document_id)
                if latest is not None and latest > upload.generation:
                    log.info("chunker.stale_generation_ignored", latest_generation=latest)
                    OUTCOMES.labels("stale").inc()
                    return
                await repository.delete_older_generations(session, upload.document_id, upload.generation)
                await repository.insert_chunks(
                    session, upload.tenant_id, upload.document_id, upload.generation, document.chunks, verdicts
                )
                events = chunked_events(upload, document, self.embedding_batch_size, verdicts)
                outcome = "chunked"
            for event in events:
                await add_event(session, outbox, event)

        if self.relay is not None:
            self.relay.wake()
        OUTCOMES.labels(outcome).inc()
        if document is None:
            log.warning("chunker.document_failed", reason=reason)
            return
        EXTRACT_SECONDS.observe(document.extract_seconds)
        PAGES.labels("yes").inc(document.pages - document.pages_without_text)
        PAGES.labels("no").inc(document.pages_without_text)
        CHUNKS.inc(len(document.chunks))
        flagged = [i for i, v in enumerate(verdicts or []) if not v.get("allowed", True)]
        if flagged:
            FLAGGED.inc(len(flagged))
            log.warning("chunker.chunks_flagged", chunk_indexes=flagged[:50], flagged=len(flagged))
        log.info(
            "chunker.document_chunked",
            pages=document.pages,
            pages_without_text=document.pages_without_text,
            chunks=len(document.chunks),
            extract_ms=round(document.extract_seconds * 1000, 1),
        )
