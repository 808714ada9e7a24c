"""The embedder's two subscribers, as plain functions over an :class:`Embedder`.

* ``embedding.requested.v2`` (ingestion batches) -> ``chunks.embedded.v2``, and v1 -> v1
  for batches queued before the chunker streamed documents. Published directly: the
  embedder keeps no state, so the result's event id is derived from the request's; a
  redelivery republishes the same event id and the query service's inbox drops the copy.
* ``rpc.embed`` (query embeddings): request/reply on its own queue and channel.
"""

from __future__ import annotations

import time

from faststream.rabbit import RabbitBroker
from prometheus_client import Counter, Histogram

from vectrion_common.contracts import (
    ChunksEmbeddedV1,
    ChunksEmbeddedV2,
    EmbeddedChunk,
    EmbeddingRequestedV1,
    EmbeddingRequestedV2,
    EmbedRequest,
    EmbedResponse,
    Event,
)
from vectrion_common.ids import derived_event_id
from vectrion_common.logs import get_logger
from vectrion_common.messaging.broker import publish_event
from vectrion_common.messaging.topology import Topology
from vectrion_embedder.model import Embedder

CONSUMER = "embedder"
RPC_NAME = "embed"

log = get_logger(__name__)

ENCODE_SECONDS = Histogram(
    "vectrion_embedder_encode_seconds",
    "Time from asking the model to having the vectors, per batch message or RPC (includes waiting for the model)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TEXTS = Counter("vectrion_embedder_texts_total", "Texts encoded", ["kind"])


async def embed_texts(embedder: Embedder, texts: list[str], kind: str) -> list[list[float]]:
    started = time.perf_counter()
    vectors = await embedder.embed(texts, urgent=kind == "rpc")
    ENCODE_SECONDS.labels(kind).observe(time.perf_counter() - started)
    TEXTS.labels(kind).inc(len(texts))
    return vectors


async def embed_batch(request: EmbeddingRequestedV1 | EmbeddingRequestedV2, embedder: Embedder) -> Event:
    """The ``chunks.embedded`` of the request's version for one batch: same input, same event id.
    The batch numbering and totals are passed on as they came (v2: totals on the last batch only)."""
    vectors = await embed_texts(embedder, [c.text for c in request.chunks], "batch")
    result = ChunksEmbeddedV2 if isinstance(request, EmbeddingRequestedV2) else ChunksEmbeddedV1
    return result.model_validate(
        {
            "event_id": derived_event_id(request.event_id, "embedded"),
            "trace": request.trace,
            "tenant_id": request.tenant_id,
            "document_id": request.document_id,
            "generation": request.generation,
            "batch_index": request.batch_index,
            "batch_count": request.batch_count,
            "total_chunks": request.total_chunks,
            "document": request.document,
            "model_id": embedder.model_id,
            "dimension": embedder.dimension,
            "chunks": [
                EmbeddedChunk(**chunk.model_dump(), vector=vector)
                for chunk, vector in zip(request.chunks, vectors, strict=True)
            ],
        }
    )


async def handle_embedding_requested(
    request: EmbeddingRequestedV1 | EmbeddingRequestedV2, embedder: Embedder, broker: RabbitBroker, topology: Topology
) -> None:
    embedded = await embed_batch(request, embedder)
    await publish_event(broker, topology, embedded)
    log.info(
        "embedder.batch_embedded",
        document_id=str(request.document_id),
        generation=request.generation,
        batch_index=request.batch_index,
        chunks=len(request.chunks),
        event_id=str(embedded.event_id),
        event_type=embedded.event_type,
    )


async def handle_embed_rpc(request: EmbedRequest, embedder: Embedder) -> EmbedResponse:
    vectors = await embed_texts(embedder, request.texts, "rpc")
    return EmbedResponse(model_id=embedder.model_id, dimension=embedder.dimension, vectors=vectors)
