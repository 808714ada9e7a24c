"""Outbox and inbox against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tests.harness import ADMIN_URL, RABBITMQ_URL
from vectrion_common.contracts import DocumentIndexedV1
from vectrion_common.db import make_sessionmaker, service_metadata
from vectrion_common.messaging.broker import declare_consumer_topology
from vectrion_common.messaging.inbox import claim_message, inbox_table
from vectrion_common.messaging.outbox import OutboxRelay, add_event, outbox_table
from vectrion_common.messaging.topology import Topology


@pytest.fixture
async def scratch() -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], sa.Table, sa.Table]]:
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    metadata = service_metadata(schema)
    outbox, inbox = outbox_table(metadata), inbox_table(metadata)
    url = ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + "/postgres"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield make_sessionmaker(engine), outbox, inbox
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


def _event() -> DocumentIndexedV1:
    return DocumentIndexedV1(tenant_id=uuid.uuid4(), document_id=uuid.uuid4(), generation=1, chunk_count=3)


async def test_outbox_row_rolls_back_with_its_transaction(scratch) -> None:  # type: ignore[no-untyped-def]
    sessions, outbox, _ = scratch
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await add_event(session, outbox, _event())
            raise RuntimeError("handler failed after staging the event")
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0


async def test_inbox_claims_a_message_once(scratch) -> None:  # type: ignore[no-untyped-def]
    sessions, _, inbox = scratch
    message_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        assert await claim_message(session, inbox, "c", message_id) is True
        assert await claim_message(session, inbox, "c", message_id) is False
        assert await claim_message(session, inbox, "other-consumer", message_id) is True


async def test_relay_publishes_committed_rows_and_deletes_them(scratch, broker_namespace: str) -> None:  # type: ignore[no-untyped-def]
    sessions, outbox, _ = scratch
    topology = Topology(broker_namespace)
    broker = RabbitBroker(RABBITMQ_URL)
    received: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    @broker.subscriber(topology.consumer_queue("probe", DocumentIndexedV1), exchange=topology.events)
    async def probe(body: dict[str, object]) -> None:
        await received.put(body)

    await broker.connect()
    await declare_consumer_topology(broker, topology, "probe", [DocumentIndexedV1])
    await broker.start()
    relay = OutboxRelay(sessions, outbox, broker, topology, poll_interval=0.05)
    try:
        event = _event()
        async with sessions() as session, session.begin():
            await add_event(session, outbox, event)
        assert await relay.publish_pending() == 1
        body = await asyncio.wait_for(received.get(), 10)
        assert body["event_id"] == str(event.event_id)
        assert DocumentIndexedV1.model_validate(body) == event
        async with sessions() as session:
            assert await session.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0
    finally:
        await broker.stop()
