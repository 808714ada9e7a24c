"""The embedder with the real model and the real RabbitMQ."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from faststream.rabbit import RabbitBroker

from tests.harness import RABBITMQ_URL
from vectrion_common.contracts import (
    ChunkPayload,
    ChunksEmbeddedV1,
    ChunksEmbeddedV2,
    DocumentMeta,
    EmbeddingRequestedV1,
    EmbeddingRequestedV2,
    EmbedRequest,
    EmbedResponse,
    GuardrailVerdict,
)
from vectrion_common.ids import derived_event_id
from vectrion_common.messaging.broker import declare_consumer_topology, publish_event
from vectrion_common.messaging.topology import Topology
from vectrion_embedder.batching import BatchingEmbedder
from vectrion_embedder.handlers import RPC_NAME
from vectrion_embedder.main import create_app
from vectrion_embedder.model import Embedder, SentenceTransformerEmbedder, make_embedder, token_length_batches
from vectrion_embedder.settings import EmbedderSettings


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    yield make_embedder(EmbedderSettings())


@pytest.fixture(scope="module")
async def running(broker_namespace: str, embedder: Embedder) -> AsyncIterator[tuple[Any, RabbitBroker, Topology]]:
    """The embedder app, plus a client broker with probe queues on chunks.embedded.v1 and v2."""
    settings = EmbedderSettings(broker_namespace=broker_namespace, rabbitmq_url=RABBITMQ_URL)
    topology = Topology(broker_namespace)
    app = create_app(settings, embedder=embedder)
    client = RabbitBroker(RABBITMQ_URL)
    received: asyncio.Queue[ChunksEmbeddedV1] = asyncio.Queue()
    received_v2: asyncio.Queue[ChunksEmbeddedV2] = asyncio.Queue()

    @client.subscriber(topology.consumer_queue("probe", ChunksEmbeddedV1), exchange=topology.events)
    async def probe(body: dict[str, Any]) -> None:
        await received.put(ChunksEmbeddedV1.model_validate(body))

    @client.subscriber(topology.consumer_queue("probe", ChunksEmbeddedV2), exchange=topology.events)
    async def probe_v2(body: dict[str, Any]) -> None:
        await received_v2.put(ChunksEmbeddedV2.model_validate(body))

    async with app.router.lifespan_context(app):
        await client.connect()
        await declare_consumer_topology(client, topology, "probe", [ChunksEmbeddedV1, ChunksEmbeddedV2])
        await client.start()
        app.state.probe_received = received
        app.state.probe_received_v2 = received_v2
        yield app, client, topology
        await client.stop()


async def _rpc(client: RabbitBroker, topology: Topology, texts: list[str]) -> EmbedResponse:
    response = await client.request(
        EmbedRequest(texts=texts).model_dump(), queue=topology.rpc_queue(RPC_NAME), timeout=30
    )
    return EmbedResponse.model_validate(await response.decode())


async def test_rpc_returns_unit_vectors_that_rank_similar_texts_higher(running: Any) -> None:
    _, client, topology = running
    texts = [
        "How do I reset my password?",
        "Steps to change a forgotten account password",
        "The recipe needs two cups of flour and an egg.",
    ]
    reply = await _rpc(client, topology, texts)
    assert reply.model_id == "all-MiniLM-L6-v2" and reply.dimension == 384
    assert len(reply.vectors) == 3 and all(len(v) == 384 for v in reply.vectors)
    assert all(math.isclose(math.sqrt(_cosine(v, v)), 1.0, abs_tol=1e-4) for v in reply.vectors)
    query, similar, unrelated = reply.vectors
    assert _cosine(query, similar) > 0.5 > _cosine(query, unrelated)
    assert _cosine(query, similar) > _cosine(query, unrelated) + 0.3


def _request(texts: list[str]) -> EmbeddingRequestedV1:
    document_id = uuid.uuid4()
    return EmbeddingRequestedV1(
        tenant_id=uuid.uuid4(),
        document_id=document_id,
        generation=2,
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        batch_index=1,
        batch_count=3,
        total_chunks=70,
        document=DocumentMeta(owner_id=uuid.uuid4(), filename="report.pdf", visibility="tenant"),
        chunks=[
            ChunkPayload(
                chunk_id=uuid.uuid4(),
                chunk_index=32 + i,
                text=t,
                page_start=i + 1,
                page_end=i + 2,
                # the chunker's ingestion scan travels through untouched (the first chunk has one)
                guardrail_verdict=GuardrailVerdict(allowed=True, action="allow", policy_version="p1")
                if i == 0
                else None,
            )
            for i, t in enumerate(texts)
        ],
    )


async def test_batch_request_becomes_chunks_embedded_with_derived_event_id(running: Any, embedder: Embedder) -> None:
    app, client, topology = running
    request = _request(["Quorum queues replicate messages.", "Chunks carry page numbers for citations."])
    await publish_event(client, topology, request)
    embedded: ChunksEmbeddedV1 = await asyncio.wait_for(app.state.probe_received.get(), 30)

    assert embedded.event_id == derived_event_id(request.event_id, "embedded")
    assert (embedded.tenant_id, embedded.document_id, embedded.generation) == (
        request.tenant_id,
        request.document_id,
        2,
    )
    assert (embedded.batch_index, embedded.batch_count, embedded.total_chunks) == (1, 3, 70)
    assert embedded.document == request.document and embedded.trace == request.trace
    assert (embedded.model_id, embedded.dimension) == ("all-MiniLM-L6-v2", 384)
    assert [ChunkPayload(**c.model_dump(exclude={"vector"})) for c in embedded.chunks] == request.chunks
    expected = await embedder.embed([c.text for c in request.chunks])
    for chunk, vector in zip(embedded.chunks, expected, strict=True):
        assert len(chunk.vector) == 384
        assert _cosine(chunk.vector, vector) > 0.9999


async def test_v2_batches_become_chunks_embedded_v2_with_totals_only_on_the_last(running: Any) -> None:
    app, client, topology = running
    v1 = _request(["Streaming documents in page windows."])
    common = v1.model_dump(include={"tenant_id", "document_id", "generation", "trace", "document"})
    middle = EmbeddingRequestedV2(batch_index=0, chunks=v1.chunks, **common)
    last = EmbeddingRequestedV2(batch_index=1, batch_count=2, total_chunks=2, chunks=v1.chunks, **common)
    await publish_event(client, topology, last)  # the last batch may well be embedded first
    await publish_event(client, topology, middle)
    embedded = [await asyncio.wait_for(app.state.probe_received_v2.get(), 30) for _ in range(2)]

    by_index = {e.batch_index: e for e in embedded}
    assert (by_index[0].batch_count, by_index[0].total_chunks, by_index[0].is_last) == (None, None, False)
    assert (by_index[1].batch_count, by_index[1].total_chunks, by_index[1].is_last) == (2, 2, True)
    assert by_index[0].event_id == derived_event_id(middle.event_id, "embedded")
    assert all(len(c.vector) == 384 for e in embedded for c in e.chunks)
    assert app.state.probe_received.empty()  # a v2 request never yields a v1 event


async def test_redelivered_request_yields_the_same_event_id(running: Any) -> None:
    app, client, topology = running
    request = _request(["Redelivery must be harmless."])
    await publish_event(client, topology, request)
    await publish_event(client, topology, request)
    first = await asyncio.wait_for(app.state.probe_received.get(), 30)
    second = await asyncio.wait_for(app.state.probe_received.get(), 30)
    assert first.event_id == second.event_id == derived_event_id(request.event_id, "embedded")
    assert first.chunks == second.chunks


async def test_ready_once_the_model_and_broker_answer(running: Any) -> None:
    app, _, _ = running
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": "ok", "model": "ok"}
    assert 'vectrion_embedder_texts_total{kind="rpc"}' in metrics.text


async def test_concurrent_rpc_texts_share_one_model_call_and_get_their_own_vectors(embedder: Embedder) -> None:
    texts = [f"question number {i} about {topic}" for i, topic in enumerate(["tax", "sleep", "rust", "bees"] * 4)]
    alone = await embedder.embed(texts)
    batcher = BatchingEmbedder(embedder)
    together = await asyncio.gather(*(batcher.embed([t]) for t in texts))
    assert batcher.calls <= 2  # 16 requests, not 16 model calls
    for own, reference in zip(together, alone, strict=True):
        assert len(own) == 1 and _cosine(own[0], reference) > 0.999


class _Failing:
    model_id, dimension = "failing", 384

    async def embed(self, texts: Sequence[str], *, urgent: bool = False) -> list[list[float]]:
        await asyncio.sleep(0)
        raise RuntimeError("model crashed")


async def test_a_failed_model_call_fails_every_request_in_it_and_the_next_call_runs() -> None:
    batcher = BatchingEmbedder(_Failing())
    outcomes = await asyncio.gather(*(batcher.embed(["a"]) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    with pytest.raises(RuntimeError, match="model crashed"):
        await batcher.embed(["b"])


async def test_a_batch_never_exceeds_max_texts_unless_one_request_alone_does(embedder: Embedder) -> None:
    batcher = BatchingEmbedder(embedder, max_texts=4)
    sizes = [5, 2, 2, 3]
    replies = await asyncio.gather(*(batcher.embed(["text"] * n) for n in sizes))
    assert [len(r) for r in replies] == sizes
    assert batcher.calls == 3  # [5] alone, then [2, 2], then [3]


async def test_query_embedding_is_answered_while_an_ingestion_batch_is_still_encoding(embedder: Embedder) -> None:
    texts = [f"Paragraph {i} of a long report about quorum queues, retries and dead letters. " * 4 for i in range(256)]
    batch = asyncio.ensure_future(embedder.embed(texts))
    await asyncio.sleep(0.2)  # the batch is encoding now
    vector = await asyncio.wait_for(embedder.embed(["what is a quorum queue"], urgent=True), 10)
    assert len(vector) == 1 and not batch.done()
    assert len(await batch) == 256


def test_token_length_batches_group_similar_lengths_and_cover_every_text_once() -> None:
    lengths = [5, 200, 7, 180, 6, 190, 100]
    batches = token_length_batches(lengths, 3)
    assert batches == [[1, 5, 3], [6, 2, 4], [0]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))


def test_texts_batched_by_token_length_come_back_in_order_with_their_own_vectors(embedder: Embedder) -> None:
    assert isinstance(embedder, SentenceTransformerEmbedder)
    # Short prose and long lines of figures interleaved, more than one batch: the batches are
    # regrouped by token length, the vectors must still come back in the caller's order.
    texts = [
        f"Note {i} on {topic}." if i % 2 else " ".join(f"{i * 7919 + j:,}.{j:02d}" for j in range(40))
        for i, topic in enumerate(["tax", "sleep", "rust", "bees", "tides"] * 15)
    ]
    together = embedder.embed_sync(texts)
    one_by_one = [embedder.embed_sync([text])[0] for text in texts]
    assert len(together) == len(texts) > 32
    for own, reference in zip(together, one_by_one, strict=True):
        assert _cosine(own, reference) > 0.9999
