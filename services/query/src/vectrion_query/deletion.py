"""What the query service stops serving.

The deletion saga: document.deletion_requested.v1 -> the document's read-model rows
and Qdrant points are gone, a tombstone keeps late batches out, and
document.deletion_confirmed.v1 (stage ``query``) tells ingest.

The read model is what search serves from (every hit, dense or BM25, is hydrated
from it), so the commit that deletes the rows is the moment the document stops
being searchable; the points go right after (a crash in between is repaired by
the redelivery: a duplicate still removes the points).

A failed document: document.failed.v1 (any stage, generation g) -> the rows and
points of generations up to g are gone (a document streamed in page windows may
have had some batches indexed before a later window failed; ingest says
``failed``, so nothing of it is served). No tombstone and no marker: a DLQ replay
of the failed generation, or a reprocess, indexes it again as usual. A batch of
the failed attempt that is still on its way after the report cannot be told from
a replayed one and is indexed; the reconciler reports such a document
(``failed_but_searchable``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentDeletionRequestedV1, DocumentFailedV1
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.inbox import claim_message
from vectrion_common.messaging.outbox import add_event
from vectrion_common.tombstones import add_tombstone, deletion_confirmed, lock_document
from vectrion_query import repository
from vectrion_query.indexing import CONSUMER
from vectrion_query.models import deleted_documents, inbox, outbox
from vectrion_query.vector_store import VectorStore

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DocumentRemover:
    store: VectorStore
    sessions: async_sessionmaker[AsyncSession]
    wake_relay: Callable[[], None]
    on_tenant_changed: Callable[[uuid.UUID], None] = field(default=lambda _tenant: None)

    async def handle(self, event: DocumentDeletionRequestedV1) -> None:
        removed = redacted = 0
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, event.document_id)
            first = await claim_message(session, inbox, CONSUMER, event.event_id)
            if first:
                removed = await repository.delete_document_rows(session, event.document_id)
                redacted = await repository.redact_answers_citing(session, event.document_id)
                await add_tombstone(session, deleted_documents, event.tenant_id, event.document_id)
                await add_event(session, outbox, deletion_confirmed(event, "query", removed))
        self.on_tenant_changed(event.tenant_id)
        await self.store.delete_document(event.document_id)
        if first:
            self.wake_relay()
        log.info(
            "document.removed_from_index",
            document_id=str(event.document_id),
            rows=removed,
            answers_redacted=redacted,
            duplicate=not first,
        )


@dataclass(frozen=True, slots=True)
class FailedDocumentRemover:
    store: VectorStore
    sessions: async_sessionmaker[AsyncSession]
    on_tenant_changed: Callable[[uuid.UUID], None] = field(default=lambda _tenant: None)

    async def handle(self, event: DocumentFailedV1) -> None:
        removed = 0
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, event.document_id)
            first = await claim_message(session, inbox, CONSUMER, event.event_id)
            if first:
                removed = await repository.delete_generations_before(session, event.document_id, event.generation + 1)
        if removed:
            self.on_tenant_changed(event.tenant_id)
        await self.store.delete_generations_before(event.document_id, event.generation + 1)
        log.info(
            "document.failed_removed_from_index",
            document_id=str(event.document_id),
            generation=event.generation,
            stage=event.stage,
            rows=removed,
            duplicate=not first,
        )
