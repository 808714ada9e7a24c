"""The deletion saga, ingest's side.

1. ``DELETE /v1/documents/{id}``: ONE transaction marks the document ``deleting``
   and stages ``document.deletion_requested.v1``; the request then waits (a few
   seconds at most) for the query service's confirmation, so that once the
   client has its 202 no search returns the document.
2. query (points + read model) and chunker (chunks) each remove the document,
   keep a tombstone so late pipeline events cannot bring it back, and confirm
   with ``document.deletion_confirmed.v1``; ingest records each confirmation.
3. With both confirmations in, ingest removes the file, marks the document
   ``deleted`` and publishes ``document.deleted.v1``.

A crash anywhere leaves the document ``deleting``: :meth:`DeletionSaga.sweep`
asks the stages again (their handlers are idempotent) or, confirmations in,
finishes step 3. Deleted rows are purged after the retention period.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentDeletedV1, DocumentDeletionConfirmedV1, DocumentDeletionRequestedV1
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.inbox import claim_message
from vectrion_common.messaging.outbox import add_event
from vectrion_common.storage import BlobNotFound, BlobStore
from vectrion_ingest.models import inbox, outbox
from vectrion_ingest.repository import DocumentRepository, DocumentRow
from vectrion_ingest.status import DocumentStatus

if TYPE_CHECKING:
    from vectrion_ingest.settings import IngestSettings

log = get_logger(__name__)

CONSUMER = "ingest"
SWEEP_BATCH = 100
POLL_SECONDS = 0.05
CONFIRMATION_COLUMNS = {"query": "index_removed_at", "chunker": "chunks_removed_at"}
DAY_SECONDS = 86_400.0


async def request_deletion(session: AsyncSession, document: DocumentRow) -> None:
    """Mark ``deleting`` and stage the request; the caller commits. Asking again (a sweep) resends
    the request under a new event id: the stages' handlers are idempotent."""
    values: dict[str, Any] = {"status": DocumentStatus.DELETING.value}
    if document.deletion_requested_at is None:
        values["deletion_requested_at"] = sa.func.now()
    await DocumentRepository(session).update(document.id, **values)
    await add_event(
        session,
        outbox,
        DocumentDeletionRequestedV1(
            tenant_id=document.tenant_id, document_id=document.id, generation=document.generation
        ),
    )


def both_confirmed(document: DocumentRow) -> bool:
    return document.index_removed_at is not None and document.chunks_removed_at is not None


class DeletionSaga:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        *,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._on_commit = on_commit

    async def wait_until_unsearchable(self, document_id: uuid.UUID, timeout_seconds: float) -> bool:
        """True once the query service confirmed the document is out of its index."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            async with self._sessions() as session:
                row = await DocumentRepository(session).get(document_id)
            if row is None or row.index_removed_at is not None or row.status == DocumentStatus.DELETED.value:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)

    async def confirm(self, event: DocumentDeletionConfirmedV1) -> None:
        """Record a stage's confirmation; the second one finishes the saga."""
        ids = {"document_id": str(event.document_id), "stage": event.stage, "event_id": str(event.event_id)}
        async with unit_of_work(self._sessions) as session:
            if not await claim_message(session, inbox, CONSUMER, event.event_id):
                log.info("deletion.duplicate_confirmation", **ids)
                return
            repository = DocumentRepository(session)
            document = await repository.lock(event.document_id)
            if document is None or document.tenant_id != event.tenant_id:
                log.warning("deletion.unknown_document", **ids)
                return
            if document.status != DocumentStatus.DELETING.value:
                log.info("deletion.confirmation_ignored", status=document.status, **ids)
                return
            await repository.update(document.id, **{CONFIRMATION_COLUMNS[event.stage]: sa.func.now()})
            # This stage has just confirmed: the saga is done if every other stage already had.
            finished = all(
                getattr(document, column) is not None
                for stage, column in CONFIRMATION_COLUMNS.items()
                if stage != event.stage
            )
        log.info("deletion.confirmed", removed=event.removed, **ids)
        if finished:
            await self.finish(event.document_id)

    async def finish(self, document_id: uuid.UUID) -> bool:
        """Remove the file, then mark ``deleted`` and announce it. A failure leaves the document
        ``deleting`` with its confirmations; the next sweep finishes it."""
        async with self._sessions() as session:
            document = await DocumentRepository(session).get(document_id)
        if document is None or document.status != DocumentStatus.DELETING.value or not both_confirmed(document):
            return False
        try:
            await self._blobs.delete(document.storage_key)
        except BlobNotFound:
            pass
        except Exception:
            log.exception("deletion.file_removal_failed", document_id=str(document_id))
            return False
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            current = await repository.lock(document_id)
            if current is None or current.status != DocumentStatus.DELETING.value:
                return False
            await repository.update(document_id, status=DocumentStatus.DELETED.value, deleted_at=sa.func.now())
            await add_event(
                session,
                outbox,
                DocumentDeletedV1(
                    event_id=uuid.uuid5(document_id, DocumentDeletedV1.event_type),
                    tenant_id=current.tenant_id,
                    document_id=document_id,
                    generation=current.generation,
                ),
            )
        self._on_commit()
        log.info("document.deleted", document_id=str(document_id))
        return True

    async def sweep(self, *, stuck_after_seconds: float) -> dict[str, int]:
        """Documents ``deleting`` for longer than ``stuck_after_seconds``: finish those both stages
        confirmed, ask the stages again for the others."""
        counts = {"finished": 0, "rerequested": 0}
        finishable: list[uuid.UUID] = []
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            for document in await repository.lock_in_status(DocumentStatus.DELETING, stuck_after_seconds, SWEEP_BATCH):
                if both_confirmed(document):
                    finishable.append(document.id)
                    continue
                await request_deletion(session, document)
                counts["rerequested"] += 1
                log.warning("deletion.rerequested", document_id=str(document.id))
        if counts["rerequested"]:
            self._on_commit()
        for document_id in finishable:
            counts["finished"] += await self.finish(document_id)
        return counts

    async def expire_failed(self, *, older_than_seconds: float) -> int:
        """Retention of failed documents: past it they are deleted like any other (the saga)."""
        async with unit_of_work(self._sessions) as session:
            rows = await DocumentRepository(session).lock_in_status(
                DocumentStatus.FAILED, older_than_seconds, SWEEP_BATCH
            )
            for document in rows:
                await request_deletion(session, document)
        if rows:
            self._on_commit()
            log.info("deletion.failed_documents_expired", documents=len(rows))
        return len(rows)

    async def purge_deleted(self, *, older_than_seconds: float) -> int:
        """Forget ``deleted`` documents past retention (their file is long gone)."""
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            rows = await repository.lock_in_status(DocumentStatus.DELETED, older_than_seconds, SWEEP_BATCH)
            purged = await repository.purge([r.id for r in rows])
        if purged:
            log.info("deletion.purged", documents=purged)
        return purged


def housekeeping(saga: DeletionSaga, settings: IngestSettings) -> list[Callable[[], Awaitable[object]]]:
    """The saga's periodic jobs, run by the stuck-document sweeper's loop."""

    async def stuck_deletions() -> object:
        return await saga.sweep(stuck_after_seconds=settings.stuck_deletion_seconds)

    async def deleted_retention() -> object:
        return await saga.purge_deleted(older_than_seconds=settings.deleted_retention_days * DAY_SECONDS)

    jobs: list[Callable[[], Awaitable[object]]] = [stuck_deletions, deleted_retention]
    if settings.failed_retention_days is not None:
        days = settings.failed_retention_days

        async def failed_retention() -> object:
            return await saga.expire_failed(older_than_seconds=days * DAY_SECONDS)

        jobs.append(failed_retention)
    return jobs
