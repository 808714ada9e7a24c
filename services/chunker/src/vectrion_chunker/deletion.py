"""The chunker's part of the deletion saga: document.deletion_requested.v1 -> the document's chunks
(all generations) are gone, a tombstone keeps a late upload event from chunking it again, and
document.deletion_confirmed.v1 (stage ``chunker``) tells ingest."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_chunker import repository
from vectrion_chunker.handlers import CONSUMER
from vectrion_chunker.models import deleted_documents, inbox, outbox
from vectrion_common.contracts import DocumentDeletionRequestedV1
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.inbox import claim_message
from vectrion_common.messaging.outbox import OutboxRelay, add_event
from vectrion_common.tombstones import add_tombstone, deletion_confirmed, lock_document

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ChunkRemover:
    sessions: async_sessionmaker[AsyncSession]
    relay: OutboxRelay | None

    async def __call__(self, event: DocumentDeletionRequestedV1) -> None:
        async with unit_of_work(self.sessions) as session:
            await lock_document(session, event.document_id)
            if not await claim_message(session, inbox, CONSUMER, event.event_id):
                return
            removed = await repository.delete_document_chunks(session, event.document_id)
            await add_tombstone(session, deleted_documents, event.tenant_id, event.document_id)
            await add_event(session, outbox, deletion_confirmed(event, "chunker", removed))
        if self.relay is not None:
            self.relay.wake()
        log.info("document.chunks_removed", document_id=str(event.document_id), chunks=removed)
