"""The events one handled upload makes true. Plain code: ids are derived from the upload event,
so handling the same upload again stages exactly the same events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vectrion_chunker.pipeline import ChunkedDocument
from vectrion_common.contracts import (
    ChunkPayload,
    DocumentChunkedV1,
    DocumentFailedV1,
    DocumentMeta,
    DocumentUploadedV1,
    EmbeddingRequestedV1,
    Event,
    GuardrailVerdict,
)
from vectrion_common.ids import chunk_id, derived_event_id

STAGE = "chunker"


def _common(upload: DocumentUploadedV1) -> dict[str, object]:
    return {
        "tenant_id": upload.tenant_id,
        "document_id": upload.document_id,
        "generation": upload.generation,
        "trace": upload.trace,
    }


def chunked_events(
    upload: DocumentUploadedV1,
    document: ChunkedDocument,
    batch_size: int,
    verdicts: Sequence[dict[str, Any]] | None = None,
) -> list[Event]:
    """``document.chunked.v1`` then the ``embedding.requested.v1`` batches, in chunk order; each chunk
    carries its ingestion scan verdict (``verdicts``, in chunk order) when there is one."""
    chunks = document.chunks
    scanned = [GuardrailVerdict.model_validate(v) for v in verdicts] if verdicts is not None else None
    common = _common(upload)
    events: list[Event] = [
        DocumentChunkedV1(
            event_id=derived_event_id(upload.event_id, "chunked"),
            chunk_count=len(chunks),
            pages=document.pages,
            pages_without_text=document.pages_without_text,
            **common,  # type: ignore[arg-type]
        )
    ]
    meta = DocumentMeta(owner_id=upload.owner_id, filename=upload.filename, visibility=upload.visibility)
    batch_count = math.ceil(len(chunks) / batch_size)
    for batch_index in range(batch_count):
        start = batch_index * batch_size
        batch = chunks[start : start + batch_size]
        events.append(
            EmbeddingRequestedV1(
                event_id=derived_event_id(upload.event_id, f"embedding-requested:{batch_index}"),
                batch_index=batch_index,
                batch_count=batch_count,
                total_chunks=len(chunks),
                document=meta,
                chunks=[
                    ChunkPayload(
                        chunk_id=chunk_id(upload.document_id, upload.generation, c.chunk_index),
                        chunk_index=c.chunk_index,
                        text=c.text,
                        page_start=c.page_start,
                        page_end=c.page_end,
                        guardrail_verdict=scanned[start + i] if scanned is not None else None,
                    )
                    for i, c in enumerate(batch)
                ],
                **common,  # type: ignore[arg-type]
            )
        )
    return events


def failed_event(upload: DocumentUploadedV1, reason: str) -> DocumentFailedV1:
    return DocumentFailedV1(
        event_id=derived_event_id(upload.event_id, "failed"),
        stage=STAGE,
        reason=reason,
        permanent=True,
        **_common(upload),  # type: ignore[arg-type]
    )
