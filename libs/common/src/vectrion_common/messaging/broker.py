"""Broker construction, dead-letter declaration and event publishing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from vectrion_common.contracts import Event
from vectrion_common.messaging.topology import Topology
from vectrion_common.settings import ServiceSettings


def make_broker(settings: ServiceSettings, tracer_provider: TracerProvider | None = None) -> RabbitBroker:
    return RabbitBroker(
        settings.rabbitmq_url.get_secret_value(),
        default_channel=Channel(prefetch_count=settings.broker_prefetch, publisher_confirms=True),
        middlewares=(
            RabbitTelemetryMiddleware(tracer_provider=tracer_provider),
            RabbitPrometheusMiddleware(registry=REGISTRY, app_name=f"vectrion-{settings.service_name}"),
        ),
        graceful_timeout=30.0,
        app_id=f"vectrion-{settings.service_name}",
    )


async def declare_consumer_topology(
    broker: RabbitBroker, topology: Topology, consumer: str, events: Iterable[type[Event]]
) -> None:
    """Declare the exchanges and, for each consumed event, its bound DLQ.

    The work queues themselves are declared by their subscribers on start; the
    DLQs have no subscriber, so they are declared and bound here, before any
    message can be dead-lettered into them.
    """
    await broker.declare_exchange(topology.events)
    dlx = await broker.declare_exchange(topology.dead_letters)
    for event in events:
        dlq = topology.dead_letter_queue(consumer, event)
        declared = await broker.declare_queue(dlq)
        await declared.bind(dlx, routing_key=dlq.routing_key)


async def publish_event(broker: RabbitBroker, topology: Topology, event: Event) -> None:
    """Publish one event persistently and wait for the broker's confirm."""
    await publish_payload(
        broker, topology, event.event_type, event.model_dump(mode="json"), str(event.event_id), event.trace
    )


async def publish_payload(
    broker: RabbitBroker,
    topology: Topology,
    routing_key: str,
    payload: dict[str, Any],
    message_id: str,
    headers: dict[str, str],
) -> None:
    await broker.publish(
        payload,
        exchange=topology.events,
        routing_key=routing_key,
        persist=True,
        message_id=message_id,
        message_type=routing_key,
        headers=dict(headers),
    )
