"""How a consumer that gave up on a message turns the document ``failed``.

Stateless consumers (the embedder) publish ``document.failed.v1`` directly;
consumers with a database stage it in their outbox. Either way its id derives
from the given-up message, so reporting twice is harmless (ingest's inbox).

A ``document.failed.v1`` a consumer gave up on is not reported with another one:
that one would come back to the same consumer (a cycle), and the document is
failed already. It stays parked in the DLQ for an operator to replay.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentFailedV1, Event
from vectrion_common.db import unit_of_work
from vectrion_common.messaging.broker import publish_event
from vectrion_common.messaging.outbox import add_event
from vectrion_common.messaging.retry import Failure, FailureReporter, failure_event
from vectrion_common.messaging.topology import Topology


def _not_for_failure_reports(report: FailureReporter) -> FailureReporter:
    """``report``, except for a given-up ``document.failed.v1`` (see the module docstring)."""

    async def guarded(event: Event, failure: Failure) -> None:
        if not isinstance(event, DocumentFailedV1):
            await report(event, failure)

    return guarded


def publish_failures(broker: RabbitBroker, topology: Topology, stage: str) -> FailureReporter:
    async def report(event: Event, failure: Failure) -> None:
        await publish_event(broker, topology, failure_event(event, failure, stage))

    return _not_for_failure_reports(report)


def stage_failures_in_outbox(
    sessions: async_sessionmaker[AsyncSession], outbox: sa.Table, stage: str, wake: Callable[[], None]
) -> FailureReporter:
    async def report(event: Event, failure: Failure) -> None:
        async with unit_of_work(sessions) as session:
            await add_event(session, outbox, failure_event(event, failure, stage), skip_duplicate=True)
        wake()

    return _not_for_failure_reports(report)
