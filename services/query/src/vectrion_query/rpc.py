"""Request/reply to sibling services over RabbitMQ (their own high-priority RPC queues).

FastStream's ``broker.request`` holds one lock per process for the whole round
trip, so every RPC of this process (query embeddings, guardrails checks) waited
for the one before it: at 16 concurrent users the embedder saw one request at a
time. Here many requests are in flight at once on one dedicated channel using
RabbitMQ's direct reply-to; replies are matched to callers by correlation id.
The wire format is what FastStream subscribers expect and send (JSON bodies,
``reply_to`` + ``correlation_id``), with the trace context in the headers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import weakref
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from faststream.rabbit import RabbitBroker
from opentelemetry import propagate
from pydantic import BaseModel, ValidationError

from vectrion_common.logs import get_logger
from vectrion_common.messaging.topology import Topology

log = get_logger(__name__)

R = TypeVar("R", bound=BaseModel)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class RpcFailed(Exception):
    """The peer did not answer in time, could not be reached, or answered nonsense."""


class _ReplyDesk:
    """One channel per broker connection: publishes requests, receives every reply on direct reply-to."""

    def __init__(self) -> None:
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._opening = asyncio.Lock()

    async def _ready(self, broker: RabbitBroker) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._opening:
            if self._channel is None or self._channel.is_closed:
                connection = await broker.connect()
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                # A passive declare registers the pseudo-queue with the robust channel: the consumer
                # is restored after a reconnect.
                replies = await channel.declare_queue(DIRECT_REPLY_TO, passive=True)
                await replies.consume(self._on_reply, no_ack=True)
                self._channel = channel
            return self._channel

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiter = self._pending.pop(message.correlation_id or "", None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message.body)

    async def request(self, broker: RabbitBroker, queue: str, body: dict[str, Any]) -> bytes:
        """Publish ``body`` to ``queue`` and wait for its reply (the caller bounds the wait)."""
        correlation_id = uuid.uuid4().hex
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = waiter
        headers: dict[str, Any] = {}
        propagate.inject(headers)
        try:
            channel = await self._ready(broker)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    json.dumps(body).encode(),
                    content_type="application/json",
                    correlation_id=correlation_id,
                    reply_to=DIRECT_REPLY_TO,
                    headers=headers,
                ),
                routing_key=queue,
                mandatory=True,
            )
            return await waiter
        finally:
            self._pending.pop(correlation_id, None)


_desks: weakref.WeakKeyDictionary[RabbitBroker, _ReplyDesk] = weakref.WeakKeyDictionary()


async def call(
    broker: RabbitBroker, topology: Topology, name: str, request: BaseModel, reply: type[R], wait_seconds: float
) -> R:
    desk = _desks.get(broker)
    if desk is None:
        desk = _desks[broker] = _ReplyDesk()
    try:
        async with asyncio.timeout(wait_seconds):
            body = await desk.request(broker, topology.rpc_queue(name).name, request.model_dump(mode="json"))
        return reply.model_validate_json(body)
    except TimeoutError as exc:
        log.warning("rpc.timeout", peer=name, timeout_s=wait_seconds)
        raise RpcFailed(f"{name} did not answer within {wait_seconds:g}s") from exc
    except ValidationError as exc:
        log.warning("rpc.bad_reply", peer=name)
        raise RpcFailed(f"{name} answered with an invalid reply") from exc
    except Exception as exc:  # broker down, unroutable request, closed channel: the peer is unavailable
        log.warning("rpc.failed", peer=name, error=type(exc).__name__)
        raise RpcFailed(f"{name} could not be reached: {type(exc).__name__}") from exc
