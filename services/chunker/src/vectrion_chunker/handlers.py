"""The chunker's one consumer: document.uploaded.v1 -> chunks + embedding batches + document.chunked.v1.

A document streams through in page windows (see :mod:`vectrion_chunker.pipeline`), so the
embedder starts on a long document's first pages while later ones are still extracted.
Per window, the slow part (extract, chunk, guardrails scan) runs before any transaction
is open; then one transaction stores the chunks of the embedding batches that window
completed and stages those batches (``embedding.requested.v2``) in the outbox. The last
window's transaction also claims the message in the inbox and stages
``document.chunked.v1``, so the upload counts as handled only once all of it is stored.
The next window is extracted (in the worker thread) while one is scanned and stored.

A crash or retry after window k re-extracts from the start: batch ``i`` always holds the
same chunks and has an event id derived from the upload's, and a batch is staged only in
the transaction that first inserts its chunks, so windows already stored change nothing
and send nothing again. Every window's transaction checks, under the document lock, the
deletion tombstone and whether a newer generation took over, and stops the stream if so.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_chunker import repository
from vectrion_chunker.chunk_scan import ChunkScanner
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.extraction import UnreadableDocument
from vectrion_chunker.models import deleted_documents, inbox, outbox
from vectrion_chunker.outgoing import Batch, BatchCutter, Verdict, chunked_event, embedding_requested, failed_event
from vectrion_chunker.pipeline import ChunkedWindow, WindowedChunker
from vectrion_common.contracts import DocumentUploadedV1
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
WINDOWS = Counter("vectrion_chunker_windows_total", "Page windows extracted and stored")

# What a window's transaction found: go on with the next window, or stop the stream.
WindowOutcome = Literal["stored", "duplicate", "deleted", "stale"]


@dataclass(slots=True)
class _Progress:
    """What the windows of one document added up to so far."""

    pages: int = 0
    pages_without_text: int = 0
    chunks: int = 0
    extract_seconds: float = 0.0
    flagged: list[int] = field(default_factory=list)

    def add(self, window: ChunkedWindow, verdicts: list[Verdict] | None) -> None:
        self.pages += window.pages
        self.pages_without_text += window.pages_without_text
        self.chunks += len(window.chunks)
        self.extract_seconds += window.extract_seconds
        for chunk, verdict in zip(window.chunks, verdicts or [], strict=False):
            if verdict is not None and not verdict.get("allowed", True):
                self.flagged.append(chunk.chunk_index)


def _retrieve_exception(future: asyncio.Future[ChunkedWindow]) -> None:
    """A window extracted ahead and then dropped (the stream stopped): its error is of no interest."""
    if not future.cancelled():
        future.exception()


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
    window_pages: int = 0  # PDF pages per window; 0: the whole document in one

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

        try:
            data = await self.blobs.get(upload.storage_key)
        except BlobNotFound:
            await self._fail(upload, f"the uploaded file is missing from storage (key {upload.storage_key})")
            return
        chunker = WindowedChunker(
            data, upload.content_type, self.rules, window_pages=self.window_pages, ocr_max_pages=self.ocr_max_pages
        )
        cutter = BatchCutter(self.embedding_batch_size)
        progress = _Progress()
        loop = asyncio.get_running_loop()
        extracting = loop.run_in_executor(self.extractors, chunker.next_window)
        while True:
            try:
                window = await extracting
            except UnreadableDocument as exc:
                # Windows stored before stay until a reprocess or a delete: the document is failed.
                await self._fail(upload, str(exc))
                return
            if not window.last:
                # The next window extracts while this one is scanned and stored (one call at a time:
                # the chunker is not thread-safe). If this window stops the stream, it is dropped.
                extracting = loop.run_in_executor(self.extractors, chunker.next_window)
                extracting.add_done_callback(_retrieve_exception)
            verdicts: list[Verdict] | None = None
            if self.scanner is not None and window.chunks:
                # Network I/O before the transaction; a failure raises and is retried like any transient error.
                verdicts = list(await self.scanner.scan(upload.tenant_id, [c.text for c in window.chunks]))
            progress.add(window, verdicts)
            batches = cutter.add(window.chunks, verdicts, last=window.last)
            outcome, inserted = await self._store_window(upload, batches, progress, last=window.last)
            WINDOWS.inc()
            if outcome != "stored":
                log.info(f"chunker.{outcome}_stream_stopped", pages_done=progress.pages)
                OUTCOMES.labels(outcome).inc()
                return
            if self.relay is not None:
                self.relay.wake()
            PAGES.labels("yes").inc(window.pages - window.pages_without_text)
            PAGES.labels("no").inc(window.pages_without_text)
            CHUNKS.inc(inserted)
            log.info(
                "chunker.window_stored",
                pages=window.pages,
                pages_done=progress.pages,
                chunks=len(window.chunks),
                batches=[b.index for b in batches],
                inserted=inserted,
                last=window.last,
                extract_ms=round(window.extract_seconds * 1000, 1),
            )
            if window.last:
                break

        OUTCOMES.labels("chunked").inc()
        EXTRACT_SECONDS.observe(progress.extract_seconds)
        if progress.flagged:
            FLAGGED.inc(len(progress.flagged))
            log.warning("chunker.chunks_flagged", chunk_indexes=progress.flagged[:50], flagged=len(progress.flagged))
        log.info(
            "chunker.document_chunked",
            pages=progress.pages,
            pages_without_text=progress.pages_without_text,
            chunks=progress.chunks,
            extract_ms=round(progress.extract_seconds * 1000, 1),
        )

    async def _store_window(
        self, upload: DocumentUploadedV1, batches: list[Batch], progress: _Progress, *, last: bool
    ) -> tuple[WindowOutcome, int]:
        """One transaction: the window's complete batches stored and staged; the last one also claims
        the message and stages document.chunked.v1. Returns the outcome and the chunk rows inserted."""
        inserted_rows = 0
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, upload.document_id)
            # The last window claims first: a copy that got this far already stored everything.
            claimed = last and await claim_message(session, inbox, CONSUMER, upload.event_id)
            if last and not claimed:
                return "duplicate", 0
            if await is_deleted(session, deleted_documents, upload.document_id):
                # Deleted while being extracted: nothing more of it may be stored or sent on
                # (the deletion removed what earlier windows stored).
                await self._claim_to_stop(session, upload, claimed)
                return "deleted", 0
            latest = await repository.latest_generation(session, upload.document_id)
            if latest is not None and latest > upload.generation:
                log.info("chunker.stale_generation_ignored", latest_generation=latest)
                await self._claim_to_stop(session, upload, claimed)
                return "stale", 0
            await repository.delete_older_generations(session, upload.document_id, upload.generation)
            for batch in batches:
                inserted = await repository.insert_chunks(
                    session, upload.tenant_id, upload.document_id, upload.generation, batch.chunks, batch.verdicts
                )
                # A batch's chunks are stored in the transaction that stages it: chunks already there
                # mean an earlier delivery staged (and maybe published) this batch.
                if inserted:
                    await add_event(session, outbox, embedding_requested(upload, batch), skip_duplicate=True)
                inserted_rows += inserted
            if last:
                await add_event(
                    session,
                    outbox,
                    chunked_event(
                        upload,
                        chunk_count=progress.chunks,
                        pages=progress.pages,
                        pages_without_text=progress.pages_without_text,
                    ),
                )
        return "stored", inserted_rows

    @staticmethod
    async def _claim_to_stop(session: AsyncSession, upload: DocumentUploadedV1, claimed: bool) -> None:
        """The stream stops here for good: a redelivery may skip it (the pre-check reads the inbox)."""
        if not claimed:
            await claim_message(session, inbox, CONSUMER, upload.event_id)

    async def _fail(self, upload: DocumentUploadedV1, reason: str) -> None:
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, upload.document_id)
            if not await claim_message(session, inbox, CONSUMER, upload.event_id):
                OUTCOMES.labels("duplicate").inc()
                return
            if await is_deleted(session, deleted_documents, upload.document_id):
                OUTCOMES.labels("deleted").inc()
                return
            await add_event(session, outbox, failed_event(upload, reason))
        if self.relay is not None:
            self.relay.wake()
        OUTCOMES.labels("failed").inc()
        log.warning("chunker.document_failed", reason=reason)
