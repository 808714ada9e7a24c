"""Reading and acting on parked messages, through RabbitMQ itself (no management plugin).

RabbitMQ cannot peek at a queue, so a scan takes every message of a DLQ with
``basic.get`` on one channel, holding them all unacknowledged (none is seen
twice), acts on the ones asked for, and gives the rest back (``nack`` with
requeue). A replay publishes the message (with publisher confirm) to the retry
exchange under its work queue's name - it reaches only the consumer it failed
in, with a fresh attempt count - and only then removes it from the DLQ.
A crash in between leaves it in both places; consumers dedupe on the message id.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from vectrion_common.messaging.retry import (
    ATTEMPT_HEADER,
    CONSUMER_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    PERMANENT_HEADER,
    QUEUE_HEADER,
)
from vectrion_common.messaging.topology import Topology, work_queue_of

REPLAYS_HEADER = "x-vectrion-replays"
_DROPPED_ON_REPLAY = (
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    PERMANENT_HEADER,
    FAILED_AT_HEADER,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-delivery-count",
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    queue: str
    work_queue: str
    consumer: str | None
    event_type: str | None
    error: str | None
    error_type: str | None
    permanent: bool | None
    attempts: int | None
    failed_at: str | None
    document_id: str | None
    tenant_id: str | None
    generation: int | None
    headers: dict[str, Any] | None = None  # None in summaries (listing), see :meth:`summary`
    body: Any = None

    def summary(self) -> DeadLetter:
        """Without headers and body: what a listing shows."""
        return replace(self, headers=None, body=None)


Action = Callable[[AbstractIncomingMessage, DeadLetter], Awaitable[None]]


class DeadLetterStore:
    def __init__(self, url: str, topology: Topology, *, max_scan: int = 1000) -> None:
        self._url = url
        self._topology = topology
        self._max_scan = max_scan
        self._connection: AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def queues(self) -> list[str]:
        return self._topology.dead_letter_queues()

    async def list_messages(self, queue: str | None = None) -> list[DeadLetter]:
        return await self._scan(queue, None, None)

    async def find(self, message_id: str, queue: str | None = None) -> list[DeadLetter]:
        return await self._scan(queue, message_id, None)

    async def replay(self, message_id: str, queue: str | None = None) -> list[DeadLetter]:
        """Send the message back to its consumer; answers what was replayed (empty: not found)."""
        return await self._scan(queue, message_id, self._republish)

    async def purge(self, message_id: str, queue: str | None = None) -> list[DeadLetter]:
        """Drop the message for good; answers what was dropped."""
        return await self._scan(queue, message_id, _drop)

    async def _scan(self, queue: str | None, message_id: str | None, action: Action | None) -> list[DeadLetter]:
        if self._connection is None:
            raise RuntimeError("DeadLetterStore.start() was not awaited")
        names = [queue] if queue else self.queues()
        found: list[DeadLetter] = []
        async with self._lock:
            for name in names:
                found.extend(await self._scan_queue(name, message_id, action))
        return found

    async def _scan_queue(self, name: str, message_id: str | None, action: Action | None) -> list[DeadLetter]:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            dlq = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
            held: list[AbstractIncomingMessage] = []
            found: list[DeadLetter] = []
            while len(held) < self._max_scan:
                message = await dlq.get(no_ack=False, fail=False)
                if message is None:
                    break
                held.append(message)
                letter = to_dead_letter(name, message)
                if message_id is not None and letter.message_id != message_id:
                    continue
                found.append(letter)
                if action is not None:
                    await action(message, letter)
            for message in held:
                if not message.processed:
                    await message.nack(requeue=True)
            return found
        finally:
            await channel.close()

    async def _republish(self, message: AbstractIncomingMessage, letter: DeadLetter) -> None:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            retries = await channel.declare_exchange(
                self._topology.retries.name, aio_pika.ExchangeType.DIRECT, durable=True
            )
            headers = {k: v for k, v in (message.headers or {}).items() if k not in _DROPPED_ON_REPLAY}
            headers[ATTEMPT_HEADER] = 1
            headers[REPLAYS_HEADER] = _int(headers.get(REPLAYS_HEADER)) + 1
            await retries.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type or "application/json",
                    message_id=message.message_id,
                    type=message.type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=letter.work_queue,
                mandatory=True,
            )
        finally:
            await channel.close()
        await message.ack()


async def _drop(message: AbstractIncomingMessage, _: DeadLetter) -> None:
    await message.ack()


def to_dead_letter(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = json_safe(dict(message.headers or {}))
    assert isinstance(headers, dict)
    try:
        body: Any = json.loads(message.body)
    except ValueError:
        body = message.body[:4096].decode("utf-8", errors="replace")
    facts: Mapping[str, Any] = body if isinstance(body, dict) else {}
    error = headers.get(ERROR_HEADER)
    if error is None and (reason := headers.get("x-first-death-reason")):
        error = f"dead-lettered by RabbitMQ: {reason}"  # e.g. the work queue's delivery limit (crash loop)
    generation = facts.get("generation")
    return DeadLetter(
        message_id=message.message_id or "",
        queue=queue,
        work_queue=str(headers.get(QUEUE_HEADER) or work_queue_of(queue)),
        consumer=_str(headers.get(CONSUMER_HEADER)),
        event_type=message.type or _str(facts.get("event_type")),
        error=_str(error),
        error_type=_str(headers.get(ERROR_TYPE_HEADER)),
        permanent=headers.get(PERMANENT_HEADER) if isinstance(headers.get(PERMANENT_HEADER), bool) else None,
        attempts=_int(headers.get(ATTEMPT_HEADER)) or None,
        failed_at=_str(headers.get(FAILED_AT_HEADER)),
        document_id=_str(facts.get("document_id")),
        tenant_id=_str(facts.get("tenant_id")),
        generation=generation if isinstance(generation, int) else None,
        headers=headers,
        body=body,
    )


def json_safe(value: Any) -> Any:
    """AMQP header values (bytes, timestamps, decimals, nested tables) as JSON values."""
    match value:
        case dict():
            return {str(k): json_safe(v) for k, v in value.items()}
        case list() | tuple():
            return [json_safe(v) for v in value]
        case bytes():
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return base64.b64encode(value).decode("ascii")
        case datetime():
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
        case Decimal():
            return float(value)
        case _:
            return value


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


__all__ = ["DeadLetter", "DeadLetterStore", "to_dead_letter"]
