"""Every exchange and queue name, declared once and read top to bottom.

- ``<ns>.events``: the topic exchange all integration events go through,
  routed by event type (``document.uploaded.v1``).
- ``<ns>.<consumer>``: one durable quorum queue per consumer and event, with a
  delivery limit so a poison message cannot loop forever, dead-lettering into
- ``<ns>.dlx`` (direct) -> ``<ns>.<consumer>.<event>.dlq``: parked messages
  for the DLQ admin API.
- ``<ns>.<consumer>.<event>.delay.<ms>ms``: one delay queue per retry delay
  (``x-message-ttl``), dead-lettering back through
- ``<ns>.retry`` (direct), where every work queue is also bound under its own
  name: a retried or replayed message reaches only the consumer it failed in.
  The delay is in the name, so changing the retry settings declares new queues
  instead of clashing with the old arguments.
- ``<ns>.rpc.<name>``: classic, non-durable request queues for request/reply
  (query -> embedder, query -> guardrails), separate from ingestion traffic so a
  query never waits behind a backlog.

``ns`` is ``VECTRION_BROKER_NAMESPACE``; tests use their own so that runs
sharing one RabbitMQ never see each other's messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from vectrion_common.contracts import (
    ChunksEmbeddedV1,
    ChunksEmbeddedV2,
    DocumentChunkedV1,
    DocumentDeletedV1,
    DocumentDeletionConfirmedV1,
    DocumentDeletionRequestedV1,
    DocumentFailedV1,
    DocumentIndexedV1,
    DocumentUploadedV1,
    EmbeddingRequestedV1,
    EmbeddingRequestedV2,
    Event,
)

DELIVERY_LIMIT = 10
RPC_MESSAGE_TTL_MS = 30_000

# Who consumes which event. Each service subscribes its own share; the DLQ admin
# (ingest) reads the whole map to find every dead-letter queue.
CONSUMERS: dict[str, tuple[type[Event], ...]] = {
    "chunker": (DocumentUploadedV1, DocumentDeletionRequestedV1),
    # v1 of the batch events stays consumed so messages queued before an upgrade still flow.
    "embedder": (EmbeddingRequestedV2, EmbeddingRequestedV1),
    "query": (ChunksEmbeddedV2, ChunksEmbeddedV1, DocumentDeletionRequestedV1),
    "ingest": (DocumentChunkedV1, DocumentIndexedV1, DocumentFailedV1, DocumentDeletionConfirmedV1),
    # Each changes what a tenant's questions answer: the gateway drops the tenant's cached answers.
    "gateway": (DocumentIndexedV1, DocumentFailedV1, DocumentDeletionRequestedV1, DocumentDeletedV1),
}


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = "vectrion"

    @property
    def events(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.events", type=ExchangeType.TOPIC, durable=True)

    @property
    def dead_letters(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.dlx", type=ExchangeType.DIRECT, durable=True)

    @property
    def retries(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.retry", type=ExchangeType.DIRECT, durable=True)

    def queue_name(self, consumer: str, event: type[Event]) -> str:
        return f"{self.namespace}.{consumer}.{event.event_type}"

    def consumer_queue(self, consumer: str, event: type[Event]) -> RabbitQueue:
        name = self.queue_name(consumer, event)
        return RabbitQueue(
            name,
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=event.event_type,
            arguments={
                "x-dead-letter-exchange": self.dead_letters.name,
                "x-dead-letter-routing-key": dlq_name(name),
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )

    def dead_letter_queue(self, consumer: str, event: type[Event]) -> RabbitQueue:
        name = dlq_name(self.queue_name(consumer, event))
        return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, routing_key=name)

    def delay_queue(self, consumer: str, event: type[Event], delay_ms: int, max_ttl_ms: int) -> RabbitQueue:
        """Holds a message ``delay_ms`` (each message may carry a shorter, jittered expiration; the
        queue TTL ``max_ttl_ms`` caps it), then dead-letters it back to the consumer's work queue.

        A classic durable queue, not quorum: there are several per work queue, each one a Raft
        cluster would cost the broker far more than the short wait it holds (persistent
        messages still survive a broker restart)."""
        work_queue = self.queue_name(consumer, event)
        return RabbitQueue(
            f"{work_queue}.delay.{delay_ms}ms",
            queue_type=QueueType.CLASSIC,
            durable=True,
            arguments={
                "x-message-ttl": max_ttl_ms,
                "x-dead-letter-exchange": self.retries.name,
                "x-dead-letter-routing-key": work_queue,
            },
        )

    def dead_letter_queues(self) -> list[str]:
        """Every consumer's DLQ, from :data:`CONSUMERS`."""
        return [
            dlq_name(self.queue_name(consumer, event)) for consumer, events in CONSUMERS.items() for event in events
        ]

    def rpc_queue(self, name: str) -> RabbitQueue:
        return RabbitQueue(
            f"{self.namespace}.rpc.{name}",
            durable=False,
            arguments={"x-message-ttl": RPC_MESSAGE_TTL_MS},
        )


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def work_queue_of(dlq: str) -> str:
    return dlq.removesuffix(".dlq")
