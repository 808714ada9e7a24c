"""FastStream subscribers of the query service: thin, the work is in :mod:`vectrion_query.indexing`."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker

from vectrion_common.contracts import ChunksEmbeddedV1, Event
from vectrion_common.logs import bind_context, clear_context
from vectrion_common.messaging.topology import Topology
from vectrion_query.indexing import CONSUMER, ChunkIndexer

CONSUMED_EVENTS: tuple[type[Event], ...] = (ChunksEmbeddedV1,)


def register_handlers(broker: RabbitBroker, topology: Topology, indexer: ChunkIndexer) -> None:
    # NACK_ON_ERROR requeues a failed batch: every step is idempotent, and the
    # quorum queue's delivery limit parks a poison message in the DLQ.
    # (Delayed retries with backoff belong to libs/common once it has them.)
    @broker.subscriber(
        topology.consumer_queue(CONSUMER, ChunksEmbeddedV1),
        topology.events,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{CONSUMER}:{ChunksEmbeddedV1.event_type}",
    )
    async def on_chunks_embedded(event: ChunksEmbeddedV1) -> None:
        bind_context(document_id=str(event.document_id), event_id=str(event.event_id))
        try:
            await indexer.handle(event)
        finally:
            clear_context("document_id", "event_id")
