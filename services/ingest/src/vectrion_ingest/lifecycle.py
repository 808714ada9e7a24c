"""Starting a document's pipeline again: reprocess, the stuck-document sweeper, DLQ replay.

A new run is a new generation: ``generation + 1``, ``attempts + 1``, status
``uploaded`` and a ``document.uploaded.v1`` of that generation in the outbox,
in the caller's transaction. Every stage then ignores the old generation's
late events (ingest's state machine, the chunker's newest-generation check, the
query service's generation cleanup).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentUploadedV1
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.outbox import add_event
from vectrion_ingest.models import outbox
from vectrion_ingest.repository import DocumentRepository, DocumentRow
from vectrion_ingest.status import DocumentStatus

log = get_logger(__name__)

SWEEP_BATCH = 100


def can_restart(status: DocumentStatus) -> bool:
    """Any document may run again, except one on its way out."""
    return status not in (DocumentStatus.DELETING, DocumentStatus.DELETED)


async def start_new_generation(session: AsyncSession, document: DocumentRow) -> int:
    """Bump the generation and stage its ``document.uploaded.v1``; the caller commits."""
    generation = int(document.generation) + 1
    await DocumentRepository(session).update(
        document.id,
        generation=generation,
        attempts=document.attempts + 1,
        status=DocumentStatus.UPLOADED.value,
        error=None,
        chunks=None,
        pages_without_text=None,
    )
    await add_event(
        session,
        outbox,
        DocumentUploadedV1(
            tenant_id=document.tenant_id,
            document_id=document.id,
            generation=generation,
            owner_id=document.owner_id,
            filename=document.filename,
            content_type=document.content_type,
            storage_key=document.storage_key,
            sha256=document.sha256,
            size_bytes=document.size_bytes,
            visibility=document.visibility,
        ),
    )
    return generation


def resumed_status(status: DocumentStatus, generation: int, message_generation: int | None) -> DocumentStatus | None:
    """The status a document takes when a parked message of it is replayed, or None to leave it.

    Only a ``failed`` document of the message's own generation comes back to life
    (``processing``): the replayed message can then carry it forward again.
    """
    if status is DocumentStatus.FAILED and message_generation == generation:
        return DocumentStatus.PROCESSING
    return None


class StuckDocumentSweeper:
    """Finds documents whose status stopped moving; re-drives them or, out of attempts, fails them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        stuck_after_seconds: float,
        max_attempts: int,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._stuck_after = stuck_after_seconds
        self._max_attempts = max_attempts
        self._on_commit = on_commit

    async def sweep(self) -> dict[str, int]:
        """One pass; answers how many documents were re-driven and failed."""
        counts = {"redriven": 0, "failed": 0}
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            for document in await repository.lock_stuck(self._stuck_after, SWEEP_BATCH):
                ids = {"document_id": str(document.id), "generation": document.generation, "status": document.status}
                if document.attempts < self._max_attempts:
                    generation = await start_new_generation(session, document)
                    counts["redriven"] += 1
                    log.warning("sweeper.redriven", new_generation=generation, attempts=document.attempts + 1, **ids)
                else:
                    reason = (
                        f"sweeper: no progress in status {document.status} for {self._stuck_after:g}s "
                        f"after {document.attempts} pipeline run(s)"
                    )
                    await repository.update(document.id, status=DocumentStatus.FAILED.value, error=reason)
                    counts["failed"] += 1
                    log.error("sweeper.failed_document", reason=reason, **ids)
        if counts["redriven"]:
            self._on_commit()
        return counts
