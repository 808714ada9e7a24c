"""Document lifecycle events that change what a tenant's questions answer: drop its cached answers.

A write through the gateway already bumps the tenant's document-set version,
but answers change later too: when a document becomes searchable
(``document.indexed.v1``), stops being searchable (deletion requested, then
deleted) or fails after a reprocess. The gateway consumes those events
(:data:`~vectrion_common.messaging.topology.CONSUMERS` lists them under
``gateway``: adding an event there is the whole change) and bumps the version
on each. Bumping twice is harmless, so no inbox is needed; a Redis error is
retried like any handler error.
"""

from __future__ import annotations

from vectrion_common.contracts import Event
from vectrion_common.logs import get_logger
from vectrion_common.messaging.retry import Failure
from vectrion_common.messaging.topology import CONSUMERS
from vectrion_common.runtime import ServiceRuntime
from vectrion_gateway.cache import ResponseCache

CONSUMER = "gateway"

log = get_logger(__name__)


def register_handlers(runtime: ServiceRuntime, cache: ResponseCache) -> None:
    async def on_documents_changed(event: Event) -> None:
        await cache.invalidate(event.tenant_id)
        log.info("cache.invalidated", tenant_id=str(event.tenant_id), by=event.event_type)

    for event in CONSUMERS[CONSUMER]:
        runtime.subscribe(event, on_documents_changed)


async def report_failure(event: Event, failure: Failure) -> None:
    """A cache we could not invalidate is no reason to fail the document: say so in the log only.

    The message is parked in the gateway's DLQ (replayable); meanwhile the tenant's cached
    answers may be stale until ``cache_ttl_seconds`` or the next document write.
    """
    log.error("cache.invalidation_given_up", tenant_id=str(event.tenant_id), event_type=event.event_type,
              error=failure.error, attempts=failure.attempts)
