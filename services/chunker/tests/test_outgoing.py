from __future__ import annotations

import uuid

from vectrion_chunker.chunking import Chunk
from vectrion_chunker.outgoing import chunked_events, failed_event
from vectrion_chunker.pipeline import ChunkedDocument
from vectrion_common.contracts import DocumentChunkedV1, DocumentUploadedV1, EmbeddingRequestedV1
from vectrion_common.ids import chunk_id


def _upload() -> DocumentUploadedV1:
    return DocumentUploadedV1(
        tenant_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        generation=3,
        owner_id=uuid.uuid4(),
        filename="a.pdf",
        content_type="application/pdf",
        storage_key="k",
        sha256="0" * 64,
        size_bytes=1,
    )


def _document(n: int) -> ChunkedDocument:
    chunks = [Chunk(i, f"text {i}", i // 3 + 1, i // 3 + 1) for i in range(n)]
    return ChunkedDocument(chunks=chunks, pages=n // 3 + 1, pages_without_text=0, extract_seconds=0.0)


def test_chunks_are_split_into_ordered_batches_of_the_configured_size() -> None:
    upload = _upload()
    events = chunked_events(upload, _document(70), batch_size=32)
    assert isinstance(events[0], DocumentChunkedV1) and events[0].chunk_count == 70
    batches = events[1:]
    assert all(isinstance(b, EmbeddingRequestedV1) for b in batches)
    assert [len(b.chunks) for b in batches] == [32, 32, 6]  # type: ignore[attr-defined]
    assert {(b.batch_count, b.total_chunks) for b in batches} == {(3, 70)}  # type: ignore[attr-defined]
    flat = [c for b in batches for c in b.chunks]  # type: ignore[attr-defined]
    assert [c.chunk_index for c in flat] == list(range(70))
    assert all(c.chunk_id == chunk_id(upload.document_id, 3, c.chunk_index) for c in flat)


def test_event_ids_are_the_same_when_the_same_upload_is_handled_again() -> None:
    upload = _upload()
    first = [e.event_id for e in chunked_events(upload, _document(5), batch_size=2)]
    again = [e.event_id for e in chunked_events(upload, _document(5), batch_size=2)]
    assert first == again and len(set(first)) == len(first)
    assert failed_event(upload, "x").event_id == failed_event(upload, "y").event_id not in first
