"""document.uploaded.v1 through the running chunker app, with the real PostgreSQL and RabbitMQ.

The app extracts in windows of 2 pages here, so every multi-page PDF streams through in
several windows and transactions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream.rabbit import RabbitBroker
from pydantic import SecretStr

from tests.harness import RABBITMQ_URL, SHARED_DATA, migrate_services
from vectrion_chunker.chunk_scan import ChunkScanFailed
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.deletion import ChunkRemover
from vectrion_chunker.extraction import PDF
from vectrion_chunker.handlers import UploadHandler
from vectrion_chunker.main import create_app
from vectrion_chunker.pipeline import chunk_document
from vectrion_chunker.settings import ChunkerSettings
from vectrion_common.contracts import (
    DocumentChunkedV1,
    DocumentDeletionRequestedV1,
    DocumentFailedV1,
    DocumentUploadedV1,
    EmbeddingRequestedV2,
    Event,
)
from vectrion_common.ids import chunk_id
from vectrion_common.messaging.broker import declare_consumer_topology, publish_event
from vectrion_common.messaging.topology import Topology
from vectrion_common.storage import LocalBlobStore, StorageSettings

PDFS = SHARED_DATA / "pdfs"
PROBED: tuple[type[Event], ...] = (DocumentChunkedV1, EmbeddingRequestedV2, DocumentFailedV1)
WINDOW_PAGES = 2


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
        extract_window_pages=WINDOW_PAGES,
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
        batches = probe.of(upload.document_id, EmbeddingRequestedV2)
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
    # Streamed in windows of 2 pages, the chunks are those of the whole document at once.
    whole = chunk_document((PDFS / "docling_multi_page.pdf").read_bytes(), PDF, ChunkingRules())
    assert [(r["text"], r["page_start"], r["page_end"]) for r in rows] == [
        (c.text, c.page_start, c.page_end) for c in whole.chunks
    ]
    assert all(len(r["text"]) <= 1000 and len(r["content_hash"]) == 64 for r in rows)

    batches = sorted(probe.of(upload.document_id, EmbeddingRequestedV2), key=lambda e: e.batch_index)
    assert [b.batch_index for b in batches] == list(range(len(batches)))
    *earlier, last = batches
    assert all(b.batch_count is None and b.total_chunks is None and len(b.chunks) == 8 for b in earlier)
    assert (last.batch_count, last.total_chunks) == (len(batches), len(rows)) and 0 < len(last.chunks) <= 8
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
    assert len(probe.of(upload.document_id, EmbeddingRequestedV2)) == (len(first) + 7) // 8


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


ALLOWED = {"allowed": True, "action": "allow", "policy_version": "test"}


@dataclass
class WindowHook:
    """A guardrails scanner stand-in (allows everything) that runs ``on_call[n]`` before answering its
    n-th call: one call per window with chunks, so it acts between one window's commit and the next."""

    on_call: dict[int, Callable[[], Any]]
    calls: int = 0

    async def scan(self, tenant_id: uuid.UUID, texts: Sequence[str]) -> list[dict[str, Any]]:
        self.calls += 1
        action = self.on_call.pop(self.calls, None)
        if action is not None:
            await action()
        return [dict(ALLOWED) for _ in texts]


def _handler(app: Any, blobs: LocalBlobStore, scanner: WindowHook) -> UploadHandler:
    """The app's upload handler, called directly (the app's outbox relay publishes what it stages)."""
    return UploadHandler(
        sessions=app.state.sessions,
        blobs=blobs,
        relay=None,
        rules=ChunkingRules(),
        embedding_batch_size=2,
        scanner=scanner,
        window_pages=WINDOW_PAGES,
    )


async def _crash() -> None:
    raise ChunkScanFailed("the process died here")


async def test_a_redelivery_after_a_crash_between_windows_ends_with_every_chunk_and_batch_once(
    app_and_blobs: Any, probe: Probe, admin_conn: Any
) -> None:
    app, blobs = app_and_blobs
    upload = await _upload(blobs, "docling_multi_page.pdf")  # windows: pages 1-2, 3-5
    scanner = WindowHook({2: _crash})
    handler = _handler(app, blobs, scanner)
    with pytest.raises(ChunkScanFailed):
        await handler(upload)
    stored_first = await _chunk_rows(admin_conn, upload.document_id)
    assert stored_first, "the first window's complete batches are stored before the crash"
    first_batches = len(stored_first) // 2
    await probe.wait_for(lambda _: len(probe.of(upload.document_id, EmbeddingRequestedV2)) == first_batches)

    await handler(upload)  # the redelivery: extracts from the start again
    await probe.wait_for(lambda _: bool(probe.of(upload.document_id, DocumentChunkedV1)))
    await asyncio.sleep(1.0)  # give a (wrongly) re-staged batch time to arrive

    rows = await _chunk_rows(admin_conn, upload.document_id)
    whole = chunk_document((PDFS / "docling_multi_page.pdf").read_bytes(), PDF, ChunkingRules())
    assert [(r["chunk_index"], r["text"]) for r in rows] == [(c.chunk_index, c.text) for c in whole.chunks]
    assert [dict(r) for r in rows[: len(stored_first)]] == [dict(r) for r in stored_first]  # left alone
    assert all(json.loads(r["guardrail_verdict"]) == ALLOWED for r in rows)
    batches = probe.of(upload.document_id, EmbeddingRequestedV2)
    assert sorted(b.batch_index for b in batches) == list(range((len(rows) + 1) // 2))  # each batch once
    assert all(c.guardrail_verdict is not None and c.guardrail_verdict.allowed for b in batches for c in b.chunks)
    assert [c.chunk_index for b in sorted(batches, key=lambda b: b.batch_index) for c in b.chunks] == list(
        range(len(rows))
    )
    [chunked] = probe.of(upload.document_id, DocumentChunkedV1)
    assert chunked.chunk_count == len(rows) and chunked.pages == 5


async def test_a_document_deleted_while_it_streams_stops_at_the_next_window(
    app_and_blobs: Any, probe: Probe, admin_conn: Any
) -> None:
    app, blobs = app_and_blobs
    upload = await _upload(blobs, "docling_multi_page.pdf")
    deletion = DocumentDeletionRequestedV1(
        tenant_id=upload.tenant_id, document_id=upload.document_id, generation=upload.generation
    )

    async def delete_document() -> None:
        assert await _chunk_rows(admin_conn, upload.document_id), "the first window is stored"
        await ChunkRemover(app.state.sessions, None)(deletion)

    handler = _handler(app, blobs, WindowHook({2: delete_document}))
    await handler(upload)  # returns normally: the message is done with

    assert await _chunk_rows(admin_conn, upload.document_id) == []
    await handler(upload)  # a redelivery is skipped
    assert await _chunk_rows(admin_conn, upload.document_id) == []
    await asyncio.sleep(1.0)
    assert probe.of(upload.document_id, DocumentChunkedV1) == []
