"""document.uploaded.v1 through the running chunker app, with the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream.rabbit import RabbitBroker
from pydantic import SecretStr

from tests.harness import RABBITMQ_URL, SHARED_DATA, migrate_services
from vectrion_chunker.main import create_app
from vectrion_chunker.settings import ChunkerSettings
from vectrion_common.contracts import (
    DocumentChunkedV1,
    DocumentFailedV1,
    DocumentUploadedV1,
    EmbeddingRequestedV1,
    Event,
)
from vectrion_common.ids import chunk_id
from vectrion_common.messaging.broker import declare_consumer_topology, publish_event
from vectrion_common.messaging.topology import Topology
from vectrion_common.storage import LocalBlobStore, StorageSettings

PDFS = SHARED_DATA / "pdfs"
PROBED: tuple[type[Event], ...] = (DocumentChunkedV1, EmbeddingRequestedV1, DocumentFailedV1)


@dataclass
class Probe:
    """Collects every event the chunker emits, from queues bound like a real consumer's."""

    broker: RabbitBroker
    topology: Topology
    received: list[Event] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Callable[[list[Event]], bool]) -> list[Event]:
        async with asyncio.timeout(60):
            while not predicate(self.received):
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    def of(self, document_id: uuid.UUID, kind: type[Event]) -> list[Any]:
        return [e for e in self.received if isinstance(e, kind) and e.document_id == document_id]


@pytest.fixture(scope="module")
async def probe(broker_namespace: str) -> AsyncIterator[Probe]:
    topology = Topology(broker_namespace)
    broker = RabbitBroker(RABBITMQ_URL)
    found = Probe(broker, topology)

    def recorder(cls: type[Event]) -> Callable[[dict[str, Any]], None]:
        def record(body: dict[str, Any]) -> None:
            found.received.append(cls.model_validate(body))
            found.arrived.set()

        return record

    for event_cls in PROBED:
        broker.subscriber(topology.consumer_queue("probe", event_cls), exchange=topology.events)(recorder(event_cls))
    await broker.connect()
    await declare_consumer_topology(broker, topology, "probe", PROBED)
    await broker.start()
    yield found
    await broker.stop()


@pytest.fixture(scope="module")
def chunker_db() -> str:
    """Sync on purpose: migrating runs its own event loop."""
    return migrate_services("chunker")


@pytest.fixture
async def app_and_blobs(
    chunker_db: str, broker_namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[Any, LocalBlobStore]]:
    settings = ChunkerSettings(
        db_name=chunker_db,
        broker_namespace=broker_namespace,
        rabbitmq_url=RABBITMQ_URL,
        storage=StorageSettings(backend="local", local_root=tmp_path / "blobs"),
        embedding_batch_size=8,
        chunk_scan="off",  # chunking alone; the guardrails scan has its own tests (test_chunk_scan.py)
        internal_token_secret=SecretStr("chunker-test-internal-secret-0123456789"),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, LocalBlobStore(tmp_path / "blobs")


async def _upload(blobs: LocalBlobStore, pdf: str) -> DocumentUploadedV1:
    document_id = uuid.uuid4()
    key = f"tenant/{document_id}.pdf"
    data = (PDFS / pdf).read_bytes()
    await blobs.put(key, data)
    return DocumentUploadedV1(
        tenant_id=uuid.uuid4(),
        document_id=document_id,
        generation=1,
        owner_id=uuid.uuid4(),
        filename=pdf,
        content_type="application/pdf",
        storage_key=key,
        sha256="0" * 64,
        size_bytes=len(data),
        visibility="private",
    )


async def _chunk_rows(admin_conn: Any, document_id: uuid.UUID) -> list[Any]:
    rows: list[Any] = await admin_conn.fetch(
        "SELECT * FROM chunker.chunks WHERE document_id = $1 ORDER BY chunk_index", document_id
    )
    return rows


async def test_uploaded_pdf_becomes_chunks_and_events(app_and_blobs: Any, probe: Probe, admin_conn: Any) -> None:
    app, blobs = app_and_blobs
    upload = await _upload(blobs, "docling_multi_page.pdf")
    await publish_event(probe.broker, probe.topology, upload)

    def complete(_: list[Event]) -> bool:
        chunked = probe.of(upload.document_id, DocumentChunkedV1)
        batches = probe.of(upload.document_id, EmbeddingRequestedV1)
        return bool(chunked) and len(batches) == (chunked[0].chunk_count + 7) // 8

    await probe.wait_for(complete)
    [chunked] = probe.of(upload.document_id, DocumentChunkedV1)
    assert chunked.pages == 5 and chunked.pages_without_text == 0
    assert chunked.generation == 1 and chunked.tenant_id == upload.tenant_id

    rows = await _chunk_rows(admin_conn, upload.document_id)
    assert len(rows) == chunked.chunk_count > 3
    assert [r["chunk_index"] for r in rows] == list(range(len(rows)))
    assert all(r["id"] == chunk_id(upload.document_id, 1, r["chunk_index"]) for r in rows)
    assert rows[0]["page_start"] == 1 and rows[-1]["page_end"] == 5
    assert all(len(r["text"]) <= 1000 and len(r["content_hash"]) == 64 for r in rows)

    batches = sorted(probe.of(upload.document_id, EmbeddingRequestedV1), key=lambda e: e.batch_index)
    assert [b.batch_index for b in batches] == list(range(len(batches)))
    assert all(b.batch_count == len(batches) and b.total_chunks == len(rows) for b in batches)
    assert all(len(b.chunks) <= 8 for b in batches)
    payloads = [c for b in batches for c in b.chunks]
    assert [(p.chunk_id, p.text, p.page_start, p.page_end) for p in payloads] == [
        (r["id"], r["text"], r["page_start"], r["page_end"]) for r in rows
    ]
    assert batches[0].document.filename == "docling_multi_page.pdf"
    assert batches[0].document.owner_id == upload.owner_id and batches[0].document.visibility == "private"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert ready.status_code == 200, ready.text
    assert "vectrion_chunker_chunks_total" in metrics.text


async def test_duplicate_delivery_creates_no_duplicate_chunks_or_events(
    app_and_blobs: Any, probe: Probe, admin_conn: Any
) -> None:
    _, blobs = app_and_blobs
    upload = await _upload(blobs, "pypdfsamples_pdflatex-4-pages.pdf")
    await publish_event(probe.broker, probe.topology, upload)
    await probe.wait_for(lambda _: bool(probe.of(upload.document_id, DocumentChunkedV1)))
    first = await _chunk_rows(admin_conn, upload.document_id)

    await publish_event(probe.broker, probe.topology, upload)  # same event id: a redelivery
    # The chunker handles its queue in order: once a later upload is done, the duplicate was seen.
    sentinel = await _upload(blobs, "pdfplumber_password-example.pdf")
    await publish_event(probe.broker, probe.topology, sentinel)
    await probe.wait_for(lambda _: bool(probe.of(sentinel.document_id, DocumentFailedV1)))
    await asyncio.sleep(0.5)  # give a (wrongly) re-staged outbox batch time to arrive

    again = await _chunk_rows(admin_conn, upload.document_id)
    assert [dict(r) for r in again] == [dict(r) for r in first]
    assert len(probe.of(upload.document_id, DocumentChunkedV1)) == 1
    assert len(probe.of(upload.document_id, EmbeddingRequestedV1)) == (len(first) + 7) // 8


async def test_encrypted_pdf_fails_permanently(app_and_blobs: Any, probe: Probe, admin_conn: Any) -> None:
    _, blobs = app_and_blobs
    upload = await _upload(blobs, "pdfplumber_password-example.pdf")
    await publish_event(probe.broker, probe.topology, upload)
    await probe.wait_for(lambda _: bool(probe.of(upload.document_id, DocumentFailedV1)))

    [failed] = probe.of(upload.document_id, DocumentFailedV1)
    assert failed.stage == "chunker" and failed.permanent is True
    assert "encrypted" in failed.reason
    assert failed.generation == 1 and failed.tenant_id == upload.tenant_id
    assert await _chunk_rows(admin_conn, upload.document_id) == []
    assert probe.of(upload.document_id, DocumentChunkedV1) == []


async def test_missing_file_fails_permanently(app_and_blobs: Any, probe: Probe) -> None:
    _, blobs = app_and_blobs
    upload = await _upload(blobs, "docling_multi_page.pdf")
    await blobs.delete(upload.storage_key)
    await publish_event(probe.broker, probe.topology, upload)
    await probe.wait_for(lambda _: bool(probe.of(upload.document_id, DocumentFailedV1)))
    [failed] = probe.of(upload.document_id, DocumentFailedV1)
    assert failed.permanent and "missing" in failed.reason


async def test_a_new_generation_replaces_chunks_and_a_late_old_one_is_ignored(
    app_and_blobs: Any, probe: Probe, admin_conn: Any
) -> None:
    _, blobs = app_and_blobs
    first = await _upload(blobs, "pypdfsamples_pdflatex-4-pages.pdf")
    second = first.model_copy(update={"event_id": uuid.uuid4(), "generation": 2})
    late_first = first.model_copy(update={"event_id": uuid.uuid4()})  # gen 1 republished after gen 2

    def chunked(generation: int) -> list[Any]:
        return [e for e in probe.of(first.document_id, DocumentChunkedV1) if e.generation == generation]

    await publish_event(probe.broker, probe.topology, first)
    await probe.wait_for(lambda _: bool(chunked(1)))
    await publish_event(probe.broker, probe.topology, second)
    await probe.wait_for(lambda _: bool(chunked(2)))
    await publish_event(probe.broker, probe.topology, late_first)
    sentinel = await _upload(blobs, "pdfplumber_password-example.pdf")
    await publish_event(probe.broker, probe.topology, sentinel)
    await probe.wait_for(lambda _: bool(probe.of(sentinel.document_id, DocumentFailedV1)))
    await asyncio.sleep(0.5)

    rows = await _chunk_rows(admin_conn, first.document_id)
    assert rows and {r["generation"] for r in rows} == {2}
    assert len(chunked(1)) == 1 and len(chunked(2)) == 1
