"""Consumer ``ingest``: pipeline events move a document's status, exactly once per event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.harness import RABBITMQ_URL
from vectrion_common.contracts import DocumentChunkedV1, DocumentFailedV1, DocumentIndexedV1, DocumentUploadedV1
from vectrion_common.db import make_engine, make_sessionmaker
from vectrion_common.messaging.broker import declare_consumer_topology, publish_event
from vectrion_common.messaging.topology import Topology
from vectrion_ingest.handlers import CONSUMER, apply_pipeline_event


@pytest.fixture
async def sessions(make_settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    settings = make_settings()
    engine = make_engine(settings.db_url(), settings.db_schema)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def document(app_client, make_identity, read_pdf, upload) -> dict[str, Any]:
    """A freshly uploaded document (status uploaded, generation 1) and its tenant."""
    _, client = app_client
    identity = make_identity()
    body: dict[str, Any] = (await upload(client, identity, read_pdf("docling_multi_page.pdf"))).json()
    return {"id": uuid.UUID(body["id"]), "tenant_id": identity.tenant_id}


async def _row(admin_conn, document_id: uuid.UUID) -> Any:  # type: ignore[no-untyped-def]
    return await admin_conn.fetchrow("SELECT * FROM ingest.documents WHERE id = $1", document_id)


async def test_a_redelivered_document_indexed_changes_nothing_the_second_time(
    sessions, document, admin_conn
) -> None:
    event = DocumentIndexedV1(tenant_id=document["tenant_id"], document_id=document["id"], generation=1, chunk_count=7)
    await apply_pipeline_event(sessions, event)
    first = await _row(admin_conn, document["id"])
    # Something later changed the row; a replay of the old event must not undo it.
    await admin_conn.execute("UPDATE ingest.documents SET chunks = 8 WHERE id = $1", document["id"])

    await apply_pipeline_event(sessions, event)

    second = await _row(admin_conn, document["id"])
    assert first["status"] == second["status"] == "indexed"
    assert second["chunks"] == 8
    assert second["updated_at"] == first["updated_at"]
    assert await admin_conn.fetchval(
        "SELECT count(*) FROM ingest.inbox WHERE consumer = $1 AND message_id = $2", CONSUMER, event.event_id
    ) == 1


async def test_indexed_before_chunked_stays_indexed_and_records_the_page_counts(
    sessions, document, admin_conn
) -> None:
    ids = {"tenant_id": document["tenant_id"], "document_id": document["id"], "generation": 1}
    await apply_pipeline_event(sessions, DocumentIndexedV1(**ids, chunk_count=12))
    await apply_pipeline_event(sessions, DocumentChunkedV1(**ids, chunk_count=12, pages=5, pages_without_text=1))

    row = await _row(admin_conn, document["id"])
    assert (row["status"], row["chunks"], row["pages"], row["pages_without_text"]) == ("indexed", 12, 5, 1)


async def test_a_failure_records_its_reason_and_later_events_of_that_generation_are_ignored(
    sessions, document, admin_conn
) -> None:
    ids = {"tenant_id": document["tenant_id"], "document_id": document["id"], "generation": 1}
    await apply_pipeline_event(sessions, DocumentFailedV1(**ids, stage="chunker", reason="no text layer"))
    await apply_pipeline_event(sessions, DocumentIndexedV1(**ids, chunk_count=3))

    row = await _row(admin_conn, document["id"])
    assert (row["status"], row["error"], row["chunks"]) == ("failed", "chunker: no text layer", None)


async def test_events_of_an_old_generation_are_ignored(sessions, document, admin_conn) -> None:
    await admin_conn.execute("UPDATE ingest.documents SET generation = 2 WHERE id = $1", document["id"])
    await apply_pipeline_event(
        sessions,
        DocumentIndexedV1(tenant_id=document["tenant_id"], document_id=document["id"], generation=1, chunk_count=3),
    )
    row = await _row(admin_conn, document["id"])
    assert (row["status"], row["chunks"]) == ("uploaded", None)


async def test_an_event_naming_another_tenant_does_not_touch_the_document(sessions, document, admin_conn) -> None:
    await apply_pipeline_event(
        sessions, DocumentIndexedV1(tenant_id=uuid.uuid4(), document_id=document["id"], generation=1, chunk_count=3)
    )
    assert (await _row(admin_conn, document["id"]))["status"] == "uploaded"


async def test_chunked_then_indexed_through_the_broker_bring_the_document_to_indexed(
    app_client, document, broker_namespace, auth_headers, make_identity
) -> None:
    _, client = app_client
    topology = Topology(broker_namespace)
    ids = {"tenant_id": document["tenant_id"], "document_id": document["id"], "generation": 1}
    publisher = RabbitBroker(RABBITMQ_URL)
    await publisher.connect()
    try:
        await publish_event(publisher, topology, DocumentChunkedV1(**ids, chunk_count=9, pages=5, pages_without_text=0))
        await publish_event(publisher, topology, DocumentIndexedV1(**ids, chunk_count=9))
    finally:
        await publisher.stop()

    reader = make_identity(tenant_id=document["tenant_id"])
    body: dict[str, Any] = {}
    for _ in range(100):
        body = (await client.get(f"/v1/documents/{document['id']}", headers=auth_headers(reader))).json()
        if body["status"] == "indexed" and body["pages_without_text"] is not None:
            break
        await asyncio.sleep(0.05)
    assert (body["status"], body["chunks"], body["pages"], body["pages_without_text"]) == ("indexed", 9, 5, 0)


async def test_the_uploaded_event_reaches_the_broker_through_the_outbox(
    app_client, broker_namespace, make_identity, read_pdf, upload, admin_conn
) -> None:
    _, client = app_client
    topology = Topology(broker_namespace)
    probe = RabbitBroker(RABBITMQ_URL)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @probe.subscriber(topology.consumer_queue("probe", DocumentUploadedV1), exchange=topology.events)
    async def on_uploaded(body: dict[str, Any]) -> None:
        await received.put(body)

    await probe.connect()
    await declare_consumer_topology(probe, topology, "probe", [DocumentUploadedV1])
    await probe.start()
    try:
        identity = make_identity()
        document_id = (await upload(client, identity, read_pdf("pypdfsamples_crazyones-pdfa.pdf"))).json()["id"]
        body = await asyncio.wait_for(received.get(), 10)
        while body["document_id"] != document_id:  # an earlier test's upload may come first
            body = await asyncio.wait_for(received.get(), 10)
    finally:
        await probe.stop()
    event = DocumentUploadedV1.model_validate(body)
    assert (event.tenant_id, event.owner_id, event.generation) == (identity.tenant_id, identity.user_id, 1)
    assert event.storage_key == f"{identity.tenant_id}/{document_id}/original"
    # The relay deletes the row in the transaction that published it, which commits just after the confirm.
    for _ in range(50):
        left = await admin_conn.fetchval(
            "SELECT count(*) FROM ingest.outbox WHERE payload->>'document_id' = $1", document_id
        )
        if left == 0:
            break
        await asyncio.sleep(0.05)
    assert left == 0
