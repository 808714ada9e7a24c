"""Consumer ``ingest``: pipeline events move a document's status.

Each handler: parse (FastStream validates the contract) -> claim the event in
the inbox -> lock the document -> :func:`vectrion_ingest.status.decide` ->
update, all in one transaction. A redelivered event finds its claim and changes
nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentChunkedV1, DocumentFailedV1, DocumentIndexedV1, Event
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.inbox import claim_message
from vectrion_common.messaging.retry import Failure, FailureReporter, failure_event
from vectrion_common.runtime import ServiceRuntime
from vectrion_ingest.models import inbox
from vectrion_ingest.repository import DocumentRepository
from vectrion_ingest.status import DocumentStatus, PipelineStep, decide

CONSUMER = "ingest"
CONSUMED_EVENTS: tuple[type[Event], ...] = (DocumentChunkedV1, DocumentIndexedV1, DocumentFailedV1)

log = get_logger(__name__)


def event_facts(event: Event) -> tuple[PipelineStep, dict[str, Any]]:
    """The step an event reports and the document columns it fills in."""
    match event:
        case DocumentChunkedV1():
            return PipelineStep.CHUNKED, {
                "pages": event.pages,
                "pages_without_text": event.pages_without_text,
                "chunks": event.chunk_count,
            }
        case DocumentIndexedV1():
            return PipelineStep.INDEXED, {"chunks": event.chunk_count}
        case DocumentFailedV1():
            return PipelineStep.FAILED, {"error": f"{event.stage}: {event.reason}"}
    raise TypeError(f"ingest does not consume {event.event_type}")


async def apply_pipeline_event(sessions: async_sessionmaker[AsyncSession], event: Event) -> None:
    step, facts = event_facts(event)
    ids = {"document_id": str(event.document_id), "event_id": str(event.event_id), "generation": event.generation}
    async with unit_of_work(sessions) as session:
        if not await claim_message(session, inbox, CONSUMER, event.event_id):
            log.info("event.duplicate", event_type=event.event_type, **ids)
            return
        repository = DocumentRepository(session)
        document = await repository.lock(event.document_id)
        if document is None or document.tenant_id != event.tenant_id:
            log.warning("event.unknown_document", event_type=event.event_type, **ids)
            return
        decision = decide(DocumentStatus(document.status), document.generation, step, event.generation)
        if not decision.accept:
            log.info(
                "event.ignored", event_type=event.event_type, status=document.status, reason=decision.reason, **ids
            )
            return
        await repository.update(document.id, status=decision.status.value, **facts)
    log.info(f"document.{step.value}", status=decision.status.value, transition=decision.reason, **ids, **facts)


def report_failures(sessions: async_sessionmaker[AsyncSession]) -> FailureReporter:
    """Ingest owns the status: a message it gave up on fails its document right here, through the
    same state machine (and inbox) as a ``document.failed.v1`` from another stage would."""

    async def report(event: Event, failure: Failure) -> None:
        await apply_pipeline_event(sessions, failure_event(event, failure, CONSUMER))

    return report


def register_handlers(runtime: ServiceRuntime) -> None:
    """Subscribe the ``ingest`` consumer; call before ``runtime.running()``."""
    sessions = runtime.sessions

    async def handle(event: Event) -> None:
        await apply_pipeline_event(sessions, event)

    for event_cls in CONSUMED_EVENTS:
        runtime.subscribe(event_cls, handle)
