"""Indexing of embedded chunks: the work behind the ``query`` consumers of chunks.embedded.v2 (and v1).

v2 batches of a document stream in while it is still being extracted; only the last one
knows the document's chunk total. Progress is therefore counted from what is held (read-model
rows of the (document, generation), idempotent under redelivery), not from messages, and the
total is recorded whenever the batch that carries it arrives, first or last. v1 batches carry
the total on every batch and go through the same code.

Order matters for crash safety. Points go to the vector store first (upsert by
deterministic chunk id: repeating it is harmless). Then ONE transaction claims
the message in the inbox, inserts the read-model rows, updates the progress of
(document, generation) and, when every chunk is in, stages document.indexed.v1
in the outbox. A crash after the upsert but before the commit redelivers the
message, which upserts the same points again and then commits. A redelivery
after the commit finds its inbox claim and changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import ChunksEmbeddedV1, ChunksEmbeddedV2, DocumentFailedV1, DocumentIndexedV1
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.inbox import claim_message
from vectrion_common.messaging.outbox import add_event
from vectrion_common.tombstones import is_deleted, lock_document
from vectrion_query import repository
from vectrion_query.models import deleted_documents, inbox, outbox
from vectrion_query.vector_store import IndexPoint, VectorStore

log = get_logger(__name__)

CONSUMER = "query"

ChunksEmbedded = ChunksEmbeddedV1 | ChunksEmbeddedV2


def indexed_event_id(document_id: uuid.UUID, generation: int) -> uuid.UUID:
    """One document.indexed.v1 per (document, generation), whatever batch completes it."""
    return uuid.uuid5(document_id, f"{DocumentIndexedV1.event_type}:{generation}")


def indexed_event_due(indexed_chunks: int, total_chunks: int | None, already_emitted: bool) -> bool:
    """``total_chunks`` None: the last batch has not arrived, so the document cannot be complete."""
    return not already_emitted and total_chunks is not None and indexed_chunks >= total_chunks


def points_of(event: ChunksEmbedded) -> list[IndexPoint]:
    return [
        IndexPoint(
            chunk_id=chunk.chunk_id,
            vector=chunk.vector,
            tenant_id=event.tenant_id,
            document_id=event.document_id,
            generation=event.generation,
            chunk_index=chunk.chunk_index,
            owner_id=event.document.owner_id,
            visibility=event.document.visibility,
            page_start=chunk.page_start,
            page_end=chunk.page_end,
        )
        for chunk in event.chunks
    ]


def read_model_rows(event: ChunksEmbedded, token_counts: Sequence[int | None] = ()) -> list[dict[str, object]]:
    """The read-model rows of a batch; ``token_counts`` by chunk (missing: NULL, counted when used)."""
    return [
        {
            "chunk_id": chunk.chunk_id,
            "tenant_id": event.tenant_id,
            "document_id": event.document_id,
            "generation": event.generation,
            "chunk_index": chunk.chunk_index,
            "text": chunk.text,
            "page_start": chunk.page_start,
            "page_end": chunk.page_end,
            "filename": event.document.filename,
            "owner_id": event.document.owner_id,
            "visibility": event.document.visibility,
            "guardrail_verdict": chunk.guardrail_verdict.model_dump(mode="json")
            if chunk.guardrail_verdict is not None
            else None,
            "token_count": token_counts[i] if i < len(token_counts) else None,
        }
        for i, chunk in enumerate(event.chunks)
    ]


@dataclass(frozen=True, slots=True)
class ChunkIndexer:
    store: VectorStore
    sessions: async_sessionmaker[AsyncSession]
    dimension: int
    wake_relay: Callable[[], None]
    # Derived in-memory indexes (the lexical one) rebuild from the read model after a change.
    on_tenant_changed: Callable[[uuid.UUID], None] = field(default=lambda _tenant: None)
    # The usage tokenizer (tokens.TokenCounter.count_many): each chunk is counted once, here, not
    # at every answer that reads it.
    count_tokens: Callable[[Sequence[str]], list[int]] | None = None

    async def handle(self, event: ChunksEmbedded) -> None:
        if event.dimension != self.dimension or any(len(c.vector) != self.dimension for c in event.chunks):
            reason = f"embedding dimension {event.dimension} does not match the index ({self.dimension})"
            await self._fail(event, reason)
            return
        async with self.sessions() as session:
            if await is_deleted(session, deleted_documents, event.document_id):
                log.info("chunks.deleted_document_ignored", document_id=str(event.document_id))
                return
            newest = await repository.newest_indexed_generation(session, event.document_id)
        if newest is not None and newest > event.generation:
            await self._drop_stale(event, newest, upserted=False)
            return

        await self.store.upsert(points_of(event))
        token_counts: Sequence[int | None] = ()
        if self.count_tokens is not None:  # off the event loop: queries keep being answered meanwhile
            token_counts = await asyncio.to_thread(self.count_tokens, [c.text for c in event.chunks])

        # One transaction, serialised per document (all generations): claim, then either index
        # the batch or, if a newer generation got indexed meanwhile, leave it out.
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, event.document_id)
            if not await claim_message(session, inbox, CONSUMER, event.event_id):
                outcome = "duplicate"
            elif await is_deleted(session, deleted_documents, event.document_id):
                # Deleted while this batch was on its way: its points must not stay.
                outcome = "deleted"
            elif (newest := await repository.newest_indexed_generation(session, event.document_id)) is not None and (
                newest > event.generation
            ):
                outcome = "stale"
            else:
                outcome = "indexed"
                inserted = await repository.insert_chunks(session, read_model_rows(event, token_counts))
                progress = await repository.lock_progress(
                    session, event.document_id, event.generation, event.tenant_id, event.total_chunks
                )
                indexed = await repository.count_chunks(session, event.document_id, event.generation)
                due = indexed_event_due(indexed, progress.total_chunks, progress.indexed_event_emitted)
                await repository.update_progress(
                    session, event.document_id, event.generation, indexed, progress.indexed_event_emitted or due
                )
                dropped = 0
                if due:
                    # The new generation is complete: the old one stops being served in this same commit.
                    dropped = await repository.delete_generations_before(session, event.document_id, event.generation)
                    await add_event(
                        session,
                        outbox,
                        DocumentIndexedV1(
                            event_id=indexed_event_id(event.document_id, event.generation),
                            trace=event.trace,
                            tenant_id=event.tenant_id,
                            document_id=event.document_id,
                            generation=event.generation,
                            chunk_count=indexed,
                        ),
                    )
        if outcome == "duplicate":
            log.info("chunks.duplicate_ignored", event_id=str(event.event_id), document_id=str(event.document_id))
            # The first delivery committed; it may have died before dropping the old points.
            await self._drop_older_points(event)
            return
        if outcome == "deleted":
            await self.store.delete_points([c.chunk_id for c in event.chunks])
            log.info("chunks.deleted_document_ignored", document_id=str(event.document_id))
            return
        if outcome == "stale":
            assert newest is not None
            await self._drop_stale(event, newest, upserted=True)
            return
        if inserted or dropped:
            self.on_tenant_changed(event.tenant_id)
        log.info(
            "chunks.indexed",
            document_id=str(event.document_id),
            generation=event.generation,
            batch=event.batch_index,
            inserted=inserted,
            indexed=indexed,
            total=progress.total_chunks,
        )
        if due:
            await self._drop_older_points(event)
            log.info("document.indexed", document_id=str(event.document_id), chunks=indexed, old_rows_dropped=dropped)
            self.wake_relay()

    async def _drop_older_points(self, event: ChunksEmbedded) -> None:
        if event.generation > 1:
            await self.store.delete_generations_before(event.document_id, event.generation)

    async def _drop_stale(self, event: ChunksEmbedded, newest: int, *, upserted: bool) -> None:
        """A batch of a generation older than one already indexed: it must not come back."""
        if upserted:
            await self.store.delete_points([c.chunk_id for c in event.chunks])
        log.info(
            "chunks.stale_generation_ignored",
            document_id=str(event.document_id),
            generation=event.generation,
            newest_indexed=newest,
        )

    async def _fail(self, event: ChunksEmbedded, reason: str) -> None:
        """A batch we can never index: report it once, permanently (retrying cannot help)."""
        async with unit_of_work(self.sessions) as session:
            if not await claim_message(session, inbox, CONSUMER, event.event_id):
                return
            await add_event(
                session,
                outbox,
                DocumentFailedV1(
                    event_id=uuid.uuid5(event.event_id, "query.failed"),
                    trace=event.trace,
                    tenant_id=event.tenant_id,
                    document_id=event.document_id,
                    generation=event.generation,
                    stage="index",
                    reason=reason,
                    permanent=True,
                ),
            )
        log.error("chunks.rejected", document_id=str(event.document_id), reason=reason)
        self.wake_relay()
