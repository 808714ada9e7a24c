"""The events one handled upload makes true. Plain code: ids are derived from the upload event,
so handling the same upload again stages exactly the same events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vectrion_chunker.chunking import Chunk
from vectrion_common.contracts import (
    ChunkPayload,
    DocumentChunkedV1,
    DocumentFailedV1,
    DocumentMeta,
    DocumentUploadedV1,
    EmbeddingRequestedV2,
    GuardrailVerdict,
)
from vectrion_common.ids import chunk_id, derived_event_id

STAGE = "chunker"

Verdict = dict[str, Any] | None


def _common(upload: DocumentUploadedV1) -> dict[str, object]:
    return {
        "tenant_id": upload.tenant_id,
        "document_id": upload.document_id,
        "generation": upload.generation,
        "trace": upload.trace,
    }


@dataclass(frozen=True, slots=True)
class Batch:
    """The chunks ``index * size`` onwards of a document, with their guardrails verdicts."""

    index: int
    chunks: list[Chunk]
    verdicts: list[Verdict]
    # Set on the last batch only: how many batches and chunks the document has.
    batch_count: int | None = None
    total_chunks: int | None = None


@dataclass(slots=True)
class BatchCutter:
    """Cuts a stream of chunks into embedding batches of ``size``, numbered in chunk order.

    Batch ``i`` always holds chunks ``i * size`` to ``(i + 1) * size - 1``, however the chunks
    arrive (page windows of any length), so its event id names the same chunks on every
    delivery. A full batch is held back until a chunk after it arrives: the last batch must
    be cut at the end of the document, because it is the one that carries the totals.
    """

    size: int
    _pending: list[tuple[Chunk, Verdict]] = field(default_factory=list)
    _next_index: int = 0
    _cut_chunks: int = 0

    def add(self, chunks: Sequence[Chunk], verdicts: Sequence[Verdict] | None, *, last: bool) -> list[Batch]:
        self._pending += zip(chunks, verdicts if verdicts is not None else [None] * len(chunks), strict=True)
        batches: list[Batch] = []
        while len(self._pending) > self.size or (last and self._pending):
            taken, self._pending = self._pending[: self.size], self._pending[self.size :]
            self._cut_chunks += len(taken)
            final = last and not self._pending
            batches.append(
                Batch(
                    index=self._next_index,
                    chunks=[c for c, _ in taken],
                    verdicts=[v for _, v in taken],
                    batch_count=self._next_index + 1 if final else None,
                    total_chunks=self._cut_chunks if final else None,
                )
            )
            self._next_index += 1
        return batches


def embedding_requested(upload: DocumentUploadedV1, batch: Batch) -> EmbeddingRequestedV2:
    """Each chunk carries its ingestion scan verdict when it has one (None: scanning is off)."""
    return EmbeddingRequestedV2(
        event_id=derived_event_id(upload.event_id, f"embedding-requested:{batch.index}"),
        batch_index=batch.index,
        batch_count=batch.batch_count,
        total_chunks=batch.total_chunks,
        document=DocumentMeta(owner_id=upload.owner_id, filename=upload.filename, visibility=upload.visibility),
        chunks=[
            ChunkPayload(
                chunk_id=chunk_id(upload.document_id, upload.generation, c.chunk_index),
                chunk_index=c.chunk_index,
                text=c.text,
                page_start=c.page_start,
                page_end=c.page_end,
                guardrail_verdict=GuardrailVerdict.model_validate(v) if v is not None else None,
            )
            for c, v in zip(batch.chunks, batch.verdicts, strict=True)
        ],
        **_common(upload),  # type: ignore[arg-type]
    )


def chunked_event(
    upload: DocumentUploadedV1, *, chunk_count: int, pages: int, pages_without_text: int
) -> DocumentChunkedV1:
    return DocumentChunkedV1(
        event_id=derived_event_id(upload.event_id, "chunked"),
        chunk_count=chunk_count,
        pages=pages,
        pages_without_text=pages_without_text,
        **_common(upload),  # type: ignore[arg-type]
    )


def failed_event(upload: DocumentUploadedV1, reason: str) -> DocumentFailedV1:
    return DocumentFailedV1(
        event_id=derived_event_id(upload.event_id, "failed"),
        stage=STAGE,
        reason=reason,
        permanent=True,
        **_common(upload),  # type: ignore[arg-type]
    )
