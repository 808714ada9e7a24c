"""Test doubles and helpers for the query service's tests (imported as ``tests.query_support``).

The fake embedder is a hashed bag of words (dimension 384). The peers are
stand-ins for *sibling services* (embedder and guardrails RPC) only; nothing
here fakes the database, broker or index. The guardrails stand-in blocks a
marker word, redacts an e-mail address and blocks any output containing the
request's canary, like the real output policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from faststream.rabbit import RabbitBroker
from prometheus_client import REGISTRY

from tests.harness import RABBITMQ_URL
from vectrion_common.contracts import (
    ChunksEmbeddedV1,
    ChunksEmbeddedV2,
    DocumentFailedV1,
    DocumentIndexedV1,
    DocumentMeta,
    EmbeddedChunk,
    EmbedRequest,
    EmbedResponse,
    Event,
    GuardrailCheckRequest,
    GuardrailScanRequest,
    GuardrailScanResponse,
    GuardrailVerdict,
    Visibility,
)
from vectrion_common.identity import IDENTITY_HEADER, Identity, sign_identity
from vectrion_common.ids import chunk_id
from vectrion_common.messaging.broker import declare_consumer_topology, publish_event
from vectrion_common.messaging.topology import Topology

SECRET = "test-secret"
DIMENSION = 384
BLOCK_MARKER = "xyzzy-forbidden"
REDACT_MARKER = "alice@example.com"
PLANTED_MARKER = "plugh-planted-instruction"  # the fake scan flags chunks that contain it
PROBED: tuple[type[Event], ...] = (DocumentIndexedV1, DocumentFailedV1)


def fake_embedding(text: str) -> list[float]:
    """Hashed bag of words: texts sharing words get a high cosine similarity."""
    vector = [0.0] * DIMENSION
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSION] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class Peers:
    """Stand-ins for the embedder and guardrails RPC services, plus an event probe."""

    broker: RabbitBroker
    topology: Topology
    embed_calls: int = 0
    embedded_texts: list[str] = field(default_factory=list)
    guardrail_checks: list[GuardrailCheckRequest] = field(default_factory=list)
    guardrails_delay: float = 0.0
    scanned: int = 0
    received: list[Event] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, event: Event) -> None:
        await publish_event(self.broker, self.topology, event)

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 30) -> None:
        async def until() -> None:
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), within_s)

    def events(self, kind: type[Event], document_id: uuid.UUID) -> list[Any]:
        return [e for e in self.received if isinstance(e, kind) and e.document_id == document_id]


@asynccontextmanager
async def running_peers(namespace: str) -> AsyncIterator[Peers]:
    """Embedder + guardrails RPC stand-ins and an event probe on ``namespace``."""
    topology = Topology(namespace)
    broker = RabbitBroker(RABBITMQ_URL)
    found = Peers(broker, topology)

    @broker.subscriber(topology.rpc_queue("embed"))
    async def embed(request: EmbedRequest) -> dict[str, Any]:
        found.embed_calls += 1
        found.embedded_texts += request.texts
        vectors = [fake_embedding(t) for t in request.texts]
        return EmbedResponse(model_id="fake-bow", dimension=DIMENSION, vectors=vectors).model_dump()

    @broker.subscriber(topology.rpc_queue("guardrails"))
    async def guardrails(request: GuardrailCheckRequest) -> dict[str, Any]:
        found.guardrail_checks.append(request)
        if found.guardrails_delay:
            await asyncio.sleep(found.guardrails_delay)
        if request.canary and request.canary in request.text:
            verdict = GuardrailVerdict(
                allowed=False,
                action="block",
                categories=["leakage"],
                rule_ids=["output.canary_leak"],
                policy_version="t1",
            )
        elif BLOCK_MARKER in request.text:
            verdict = GuardrailVerdict(
                allowed=False,
                action="block",
                categories=["prompt_injection"],
                rule_ids=["test-marker"],
                policy_version="t1",
            )
        elif REDACT_MARKER in request.text:
            redacted = request.text.replace(REDACT_MARKER, "[REDACTED]")
            verdict = GuardrailVerdict(allowed=True, action="redact", redacted_text=redacted, policy_version="t1")
        else:
            verdict = GuardrailVerdict(allowed=True, action="allow", policy_version="t1")
        return verdict.model_dump()

    @broker.subscriber(topology.rpc_queue("guardrails_scan"))
    async def scan(request: GuardrailScanRequest) -> dict[str, Any]:
        found.scanned += len(request.texts)
        flagged = GuardrailVerdict(
            allowed=False,
            action="block",
            categories=["prompt_injection"],
            rule_ids=["test-planted"],
            policy_version="t1",
        )
        clean = GuardrailVerdict(allowed=True, action="allow", policy_version="t1")
        return GuardrailScanResponse(
            verdicts=[flagged if PLANTED_MARKER in t else clean for t in request.texts]
        ).model_dump()

    def recorder(cls: type[Event]) -> Callable[[dict[str, Any]], None]:
        # One positional parameter only: FastStream spreads a JSON object over several.
        def record(body: dict[str, Any]) -> None:
            found.received.append(cls.model_validate(body))
            found.arrived.set()

        return record

    for event_cls in PROBED:
        broker.subscriber(topology.consumer_queue("query-probe", event_cls), exchange=topology.events)(
            recorder(event_cls)
        )

    await broker.connect()
    await declare_consumer_topology(broker, topology, "query-probe", PROBED)
    await broker.start()
    try:
        yield found
    finally:
        await broker.stop()


def as_user(tenant_id: uuid.UUID, user_id: uuid.UUID, role: str = "member") -> dict[str, str]:
    return {IDENTITY_HEADER: sign_identity(Identity(user_id=user_id, tenant_id=tenant_id, role=role), SECRET)}


@dataclass(frozen=True)
class Doc:
    tenant_id: uuid.UUID
    document_id: uuid.UUID
    owner_id: uuid.UUID
    visibility: Visibility
    filename: str
    chunks: Sequence[tuple[str, int]]  # (text, page)
    generation: int = 1
    verdicts: Sequence[GuardrailVerdict | None] = ()  # the chunker's ingestion scan, by chunk index

    def chunk_id(self, index: int) -> uuid.UUID:
        return chunk_id(self.document_id, self.generation, index)

    def batches_v2(self, size: int) -> list[ChunksEmbeddedV2]:
        """As a streaming chunker sends them: the totals only on the last batch."""
        v1 = self.batches(size)
        return [
            ChunksEmbeddedV2.model_validate(
                {
                    **batch.model_dump(),
                    "batch_count": batch.batch_count if batch.batch_index == len(v1) - 1 else None,
                    "total_chunks": batch.total_chunks if batch.batch_index == len(v1) - 1 else None,
                }
            )
            for batch in v1
        ]

    def batches(self, size: int) -> list[ChunksEmbeddedV1]:
        starts = list(range(0, len(self.chunks), size))
        return [
            ChunksEmbeddedV1(
                tenant_id=self.tenant_id,
                document_id=self.document_id,
                generation=self.generation,
                batch_index=number,
                batch_count=len(starts),
                total_chunks=len(self.chunks),
                document=DocumentMeta(owner_id=self.owner_id, filename=self.filename, visibility=self.visibility),
                model_id="fake-bow",
                dimension=DIMENSION,
                chunks=[
                    EmbeddedChunk(
                        chunk_id=self.chunk_id(index),
                        chunk_index=index,
                        text=text,
                        page_start=page,
                        page_end=page,
                        vector=fake_embedding(text),
                        guardrail_verdict=self.verdicts[index] if index < len(self.verdicts) else None,
                    )
                    for index, (text, page) in enumerate(self.chunks[start : start + size], start=start)
                ],
            )
            for number, start in enumerate(starts)
        ]


def make_doc(
    chunks: Sequence[tuple[str, int]],
    *,
    tenant_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    visibility: Visibility = "tenant",
    filename: str = "handbook.pdf",
    verdicts: Sequence[GuardrailVerdict | None] = (),
) -> Doc:
    return Doc(
        tenant_id=tenant_id or uuid.uuid4(),
        document_id=uuid.uuid4(),
        owner_id=owner_id or uuid.uuid4(),
        visibility=visibility,
        filename=filename,
        chunks=chunks,
        verdicts=verdicts,
    )


async def index(peers: Peers, doc: Doc, batch_size: int = 3) -> DocumentIndexedV1:
    """Publish a document's batches through the broker and wait for document.indexed.v1."""
    for batch in doc.batches(batch_size):
        await peers.publish(batch)
    await peers.wait_for(lambda: bool(peers.events(DocumentIndexedV1, doc.document_id)))
    indexed: DocumentIndexedV1 = peers.events(DocumentIndexedV1, doc.document_id)[0]
    return indexed


def acked_batches(namespace: str, event: type[Event] = ChunksEmbeddedV1) -> float:
    """How many chunks.embedded messages (v1 unless told) the query consumer has acked (FastStream's counter)."""
    value = REGISTRY.get_sample_value(
        "faststream_received_processed_messages_total",
        {
            "app_name": "vectrion-query",
            "broker": "rabbitmq",
            "handler": f"{namespace}.events.{event.event_type}",
            "status": "acked",
        },
    )
    return value or 0.0


async def wait_acked(
    namespace: str, at_least: float, within_s: float = 30, event: type[Event] = ChunksEmbeddedV1
) -> None:
    for _ in range(int(within_s / 0.05)):
        if acked_batches(namespace, event) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the query consumer acked {acked_batches(namespace)} batches, expected {at_least}")


async def read_model_count(admin_conn: Any, doc: Doc) -> int:
    count: int = await admin_conn.fetchval(
        "SELECT count(*) FROM query.chunks WHERE document_id = $1 AND generation = $2", doc.document_id, doc.generation
    )
    return count


HANDBOOK = [
    ("Welcome to the Acme customer handbook. It explains plans, billing and support.", 1),
    ("Support is available by email around the clock. Phone support is offered on weekdays.", 1),
    ("Billing happens on the first day of each month. Invoices are sent by email.", 2),
    ("Annual plans can be refunded within 30 days of purchase. Monthly plans are not refundable.", 3),
    ("To cancel a subscription, open the account settings page and choose cancel.", 4),
    ("Data is stored in the European Union and encrypted at rest.", 5),
    ("Our office dog is called Biscuit and enjoys long walks.", 6),
]


# --- indexing ------------------------------------------------------------------------------


@asynccontextmanager
async def own_namespace(broker_namespace: str, suffix: str) -> AsyncIterator[str]:
    """A sub-namespace of the session's: our fake RPC responders must never answer another
    service's tests (nor theirs ours) when the whole monorepo runs in one session."""
    import aio_pika

    own = f"{broker_namespace}.{suffix}"
    try:
        yield own
    finally:
        # Queues ("<session ns>.<suffix>....") go with the session namespace; our exchanges do not.
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            for exchange in (Topology(own).events.name, Topology(own).dead_letters.name):
                channel = await connection.channel()
                await channel.exchange_delete(exchange)
