"""Transactional outbox and its relay.

A handler that changes state writes the events that state change makes true
into ``<schema>.outbox`` in the same transaction (:func:`add_event`). The relay
(one asyncio task per service process) moves committed rows to RabbitMQ:
it locks a batch with ``FOR UPDATE SKIP LOCKED`` (so several replicas can run),
publishes each with publisher confirms, and deletes the rows in the same
transaction. A crash between publish and commit republishes on restart: that is
why every consumer dedupes on ``event_id`` with its inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import sqlalchemy as sa
from faststream.rabbit import RabbitBroker
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import Event
from vectrion_common.logs import get_logger
from vectrion_common.messaging.broker import publish_payload
from vectrion_common.messaging.topology import Topology
from vectrion_common.periodic import BackgroundLoop
from vectrion_common.tracing import current_traceparent

log = get_logger(__name__)


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


async def add_event(session: AsyncSession, outbox: sa.Table, event: Event, *, skip_duplicate: bool = False) -> None:
    """Stage ``event`` for publishing once the caller's transaction commits.

    ``skip_duplicate``: an event with this id still waiting in the outbox is left as it is.
    """
    trace = event.trace or current_traceparent()
    if trace and not event.trace:
        event = event.model_copy(update={"trace": trace})
    statement = insert(outbox).values(
        event_id=event.event_id,
        routing_key=event.event_type,
        payload=event.model_dump(mode="json"),
        headers=trace,
    )
    if skip_duplicate:
        statement = statement.on_conflict_do_nothing(index_elements=[outbox.c.event_id])
    await session.execute(statement)


class OutboxRelay(BackgroundLoop):
    """Publishes committed outbox rows. Call :meth:`wake` after a commit for low latency."""

    name = "outbox-relay"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: sa.Table,
        broker: RabbitBroker,
        topology: Topology,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._broker = broker
        self._topology = topology
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            try:
                published = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker or DB is down: keep the rows, try again later
                log.exception("outbox.relay_failed")
                published = 0
                await asyncio.sleep(self._poll_interval * 4)
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
                self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows went out."""
        table = self._outbox
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(table.c.id, table.c.event_id, table.c.routing_key, table.c.payload, table.c.headers)
                    .order_by(table.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await publish_payload(
                    self._broker, self._topology, row.routing_key, _as_dict(row.payload), str(row.event_id), row.headers
                )
            if rows:
                await session.execute(sa.delete(table).where(table.c.id.in_([r.id for r in rows])))
        if rows:
            log.debug("outbox.published", count=len(rows))
        return len(rows)


def _as_dict(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict)
    return payload
