"""Versioned integration events and RPC messages.

These are the only shapes services share. A breaking change is a new version
(``.v2``) published beside the old one, never an edit of a published model;
an optional field with a default (old consumers ignore it, old producers omit
it) is not a breaking change.
Every event names its tenant, document and generation, carries the W3C trace
context of the code that caused it, and has a unique ``event_id`` that the
consumer's inbox dedupes on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Visibility = Literal["tenant", "private"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=utc_now)
    trace: dict[str, str] = Field(default_factory=dict)
    tenant_id: uuid.UUID
    document_id: uuid.UUID
    generation: int = Field(ge=1)


class DocumentUploadedV1(Event):
    event_type: ClassVar[str] = "document.uploaded.v1"

    owner_id: uuid.UUID
    filename: str
    content_type: str
    storage_key: str
    sha256: str
    size_bytes: int
    visibility: Visibility = "tenant"


class DocumentChunkedV1(Event):
    event_type: ClassVar[str] = "document.chunked.v1"

    chunk_count: int
    pages: int
    pages_without_text: int


class GuardrailVerdict(BaseModel):
    """A policy decision (the guardrails check/scan RPC reply, and a chunk's ingestion scan)."""

    allowed: bool
    action: Literal["allow", "warn", "redact", "block"]
    categories: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    rule_ids: list[str] = Field(default_factory=list)
    redacted_text: str | None = None
    policy_version: str


class ChunkPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk_id: uuid.UUID
    chunk_index: int
    text: str
    page_start: int | None
    page_end: int | None
    # Added (optional, so v1 stays compatible both ways): the chunker's ingestion-time injection scan
    # of this text. The query service reuses it instead of scanning the chunk again when it was made
    # under the policy version in force; None: not scanned (scan off, or an older producer).
    guardrail_verdict: GuardrailVerdict | None = None


class DocumentMeta(BaseModel):
    """What the query side needs to filter and cite a document's chunks."""

    model_config = ConfigDict(frozen=True)

    owner_id: uuid.UUID
    filename: str
    visibility: Visibility


class EmbeddingRequestedV1(Event):
    event_type: ClassVar[str] = "embedding.requested.v1"

    batch_index: int
    batch_count: int
    total_chunks: int
    document: DocumentMeta
    chunks: list[ChunkPayload]


class EmbeddedChunk(ChunkPayload):
    vector: list[float]


class ChunksEmbeddedV1(Event):
    event_type: ClassVar[str] = "chunks.embedded.v1"

    batch_index: int
    batch_count: int
    total_chunks: int
    document: DocumentMeta
    model_id: str
    dimension: int
    chunks: list[EmbeddedChunk]


class _StreamedBatch(Event):
    """Numbering of a v2 batch: ``batch_count`` and ``total_chunks`` only on the last one."""

    batch_index: int = Field(ge=0)
    batch_count: int | None = Field(default=None, ge=1)
    total_chunks: int | None = Field(default=None, ge=1)
    document: DocumentMeta

    @model_validator(mode="after")
    def _totals_together(self) -> Self:
        if (self.batch_count is None) != (self.total_chunks is None):
            raise ValueError("batch_count and total_chunks come together, on the last batch only")
        if self.batch_count is not None and self.batch_index != self.batch_count - 1:
            raise ValueError("only the last batch (batch_index == batch_count - 1) carries the totals")
        return self

    @property
    def is_last(self) -> bool:
        return self.batch_count is not None


class EmbeddingRequestedV2(_StreamedBatch):
    """One batch of a document's chunks, sent while the document is still being extracted.

    The chunker streams a large document in page windows, so how many chunks (and batches)
    it has is known only when the last batch is cut. Batches are numbered from 0 in chunk
    order and each holds the chunks ``batch_index * size`` onwards; only the last batch
    carries ``batch_count`` and ``total_chunks``, every other batch has both None. The last
    batch may arrive before earlier ones: a consumer counts what it holds, not messages.
    (v1 had the totals on every batch, which forced extracting the whole document first.)
    """

    event_type: ClassVar[str] = "embedding.requested.v2"

    chunks: list[ChunkPayload]


class ChunksEmbeddedV2(_StreamedBatch):
    """``embedding.requested.v2`` with vectors: the same batch numbering and the same rule,
    ``batch_count`` and ``total_chunks`` only on the last batch."""

    event_type: ClassVar[str] = "chunks.embedded.v2"

    model_id: str
    dimension: int
    chunks: list[EmbeddedChunk]


class DocumentIndexedV1(Event):
    event_type: ClassVar[str] = "document.indexed.v1"

    chunk_count: int


class DocumentFailedV1(Event):
    event_type: ClassVar[str] = "document.failed.v1"

    stage: str
    reason: str
    permanent: bool = True


# --- the deletion saga (see services/ingest/src/vectrion_ingest/deletion.py) -------------

DeletionStage = Literal["query", "chunker"]


class DocumentDeletionRequestedV1(Event):
    """Ingest marked the document ``deleting``: every service drops what it holds of it, all
    generations, and remembers it (a tombstone) so late pipeline events cannot bring it back."""

    event_type: ClassVar[str] = "document.deletion_requested.v1"


class DocumentDeletionConfirmedV1(Event):
    """A stage has removed the document (``query``: points + read model; ``chunker``: chunks)."""

    event_type: ClassVar[str] = "document.deletion_confirmed.v1"

    stage: DeletionStage
    removed: int = Field(ge=0, description="rows/points this stage removed")


class DocumentDeletedV1(Event):
    """The saga is complete: the file is gone too and the document is ``deleted``."""

    event_type: ClassVar[str] = "document.deleted.v1"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (
        DocumentUploadedV1,
        DocumentChunkedV1,
        EmbeddingRequestedV1,
        EmbeddingRequestedV2,
        ChunksEmbeddedV1,
        ChunksEmbeddedV2,
        DocumentIndexedV1,
        DocumentFailedV1,
        DocumentDeletionRequestedV1,
        DocumentDeletionConfirmedV1,
        DocumentDeletedV1,
    )
}


# --- request/reply (RPC) messages -------------------------------------------------


class EmbedRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=256)


class EmbedResponse(BaseModel):
    model_id: str
    dimension: int
    vectors: list[list[float]]


# "document": text from an uploaded file (a chunk), checked for instructions hidden in it
# (indirect prompt injection) at ingestion and again when it is retrieved.
Direction = Literal["input", "output", "document"]


class GuardrailCheckRequest(BaseModel):
    text: str
    direction: Direction
    tenant_id: uuid.UUID | None = None
    canary: str | None = Field(default=None, description="per-request secret that must never appear in output")
    history: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="the user's earlier turns in this conversation, oldest first: attacks split across turns",
    )


class GuardrailScanRequest(BaseModel):
    """Many document chunks at once (direction "document"): one round trip per batch, not per chunk."""

    texts: list[str] = Field(min_length=1, max_length=256)
    tenant_id: uuid.UUID | None = None


class GuardrailScanResponse(BaseModel):
    verdicts: list[GuardrailVerdict]


# --- the reconciler (ingest asks chunker and query what they hold) ------------------


class DocumentHoldings(BaseModel):
    """What one stage holds of one document: rows (and, in query, Qdrant points) per generation."""

    document_id: uuid.UUID
    tenant_id: uuid.UUID
    tombstoned: bool = False
    rows: dict[int, int] = Field(default_factory=dict)
    points: dict[int, int] = Field(default_factory=dict)


class StageInventory(BaseModel):
    stage: DeletionStage
    documents: list[DocumentHoldings]
    repaired: dict[str, int] = Field(default_factory=dict, description="what the stage fixed on its own")
