"""Every exchange and queue name, declared once and read top to bottom.

- ``<ns>.events``: the topic exchange all integration events go through,
  routed by event type (``document.uploaded.v1``).
- ``<ns>.<consumer>``: one durable quorum queue per consumer and event, with a
  delivery limit so a poison message cannot loop forever, dead-lettering into
- ``<ns>.dlx`` (direct) -> ``<ns>.<consumer>.dlq``: parked messages for the
  DLQ admin API.
- ``<ns>.rpc.<name>``: classic, non-durable request queues for request/reply
  (query -> embedder, query -> guardrails), separate from ingestion traffic so a
  query never waits behind a backlog.

``ns`` is ``VECTRION_BROKER_NAMESPACE``; tests use their own so that runs
sharing one RabbitMQ never see each other's messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from vectrion_common.contracts import Event

DELIVERY_LIMIT = 10
RPC_MESSAGE_TTL_MS = 30_000


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = "vectrion"

    @property
    def events(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.events", type=ExchangeType.TOPIC, durable=True)

    @property
    def dead_letters(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.dlx", type=ExchangeType.DIRECT, durable=True)

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

    def rpc_queue(self, name: str) -> RabbitQueue:
        return RabbitQueue(
            f"{self.namespace}.rpc.{name}",
            durable=False,
            arguments={"x-message-ttl": RPC_MESSAGE_TTL_MS},
        )


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"
