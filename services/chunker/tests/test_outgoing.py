from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from vectrion_chunker.chunking import Chunk
from vectrion_chunker.outgoing import Batch, BatchCutter, chunked_event, embedding_requested, failed_event
from vectrion_common.contracts import DocumentMeta, DocumentUploadedV1, EmbeddingRequestedV2
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


def _chunks(start: int, stop: int) -> list[Chunk]:
    return [Chunk(i, f"text {i}", i // 3 + 1, i // 3 + 1) for i in range(start, stop)]


def _cut(windows: list[tuple[int, int]], size: int) -> list[Batch]:
    cutter = BatchCutter(size)
    batches: list[Batch] = []
    for n, (start, stop) in enumerate(windows):
        batches += cutter.add(_chunks(start, stop), None, last=n == len(windows) - 1)
    return batches


def test_batches_hold_the_same_chunks_however_the_windows_fall() -> None:
    whole = _cut([(0, 70)], 32)
    assert [len(b.chunks) for b in whole] == [32, 32, 6]
    for windows in ([(0, 10), (10, 40), (40, 41), (41, 70)], [(0, 64), (64, 70)], [(0, 0), (0, 70), (70, 70)]):
        streamed = _cut(windows, 32)
        assert [(b.index, [c.chunk_index for c in b.chunks]) for b in streamed] == [
            (b.index, [c.chunk_index for c in b.chunks]) for b in whole
        ]


def test_only_the_last_batch_carries_the_totals_even_when_the_chunks_fill_whole_batches() -> None:
    batches = _cut([(0, 32), (32, 64)], 32)  # 64 chunks: the second full batch waits for the end
    assert [(b.index, b.batch_count, b.total_chunks) for b in batches] == [(0, None, None), (1, 2, 64)]
    cutter = BatchCutter(32)
    assert cutter.add(_chunks(0, 32), None, last=False) == []  # a full batch is held until a chunk follows


def test_verdicts_travel_with_their_chunks() -> None:
    cutter = BatchCutter(2)
    verdicts = [{"allowed": i != 2} for i in range(3)]
    [first, last] = cutter.add(_chunks(0, 3), verdicts, last=True)
    assert first.verdicts == verdicts[:2] and last.verdicts == verdicts[2:]


def test_embedding_requested_v2_names_each_chunk_by_its_deterministic_id() -> None:
    upload = _upload()
    batches = _cut([(0, 5)], 2)
    events = [embedding_requested(upload, b) for b in batches]
    numbering = [(e.batch_index, e.batch_count, e.total_chunks) for e in events]
    assert numbering == [(0, None, None), (1, None, None), (2, 3, 5)]
    assert [e.is_last for e in events] == [False, False, True]
    flat = [c for e in events for c in e.chunks]
    assert [c.chunk_index for c in flat] == list(range(5))
    assert all(c.chunk_id == chunk_id(upload.document_id, 3, c.chunk_index) for c in flat)


def test_event_ids_are_the_same_when_the_same_upload_is_handled_again() -> None:
    upload = _upload()
    first = [embedding_requested(upload, b).event_id for b in _cut([(0, 5)], 2)]
    again = [embedding_requested(upload, b).event_id for b in _cut([(0, 1), (1, 5)], 2)]
    chunked = chunked_event(upload, chunk_count=5, pages=2, pages_without_text=0).event_id
    assert first == again and len(set(first)) == len(first) and chunked not in first
    assert failed_event(upload, "x").event_id == failed_event(upload, "y").event_id not in [*first, chunked]


def test_embedding_requested_v2_refuses_totals_on_a_batch_that_is_not_the_last() -> None:
    meta = DocumentMeta(owner_id=uuid.uuid4(), filename="a.pdf", visibility="tenant")
    ids = {"tenant_id": uuid.uuid4(), "document_id": uuid.uuid4(), "generation": 1, "document": meta, "chunks": []}
    with pytest.raises(ValidationError):
        EmbeddingRequestedV2(batch_index=0, batch_count=2, total_chunks=5, **ids)
    with pytest.raises(ValidationError):
        EmbeddingRequestedV2(batch_index=1, batch_count=2, **ids)
    assert EmbeddingRequestedV2(batch_index=1, batch_count=2, total_chunks=5, **ids).is_last
