"""Retries with backoff, and parking in the DLQ: the one way every consumer subscribes.

FastStream has no retry of its own. A service lists its subscriptions on a
:class:`Consumers` (one per service) and each handler is wrapped the same way:

- success: the message is acked;
- a transient error (any exception but :class:`PermanentError`) on attempt
  ``n < max_attempts``: a copy with ``x-vectrion-attempt: n+1`` goes to the
  delay queue of that attempt (TTL, then dead-lettered back to this work queue
  only, see :mod:`~vectrion_common.messaging.topology`) and the original is acked;
- the last attempt fails, or a :class:`PermanentError`, or a body that is not
  the contract: the service's :data:`FailureReporter` turns the document
  ``failed`` (a ``document.failed.v1``), then the message is parked in
  ``<queue>.dlq`` with the error in its headers and the original is acked.

Publishes use publisher confirms and happen before the ack, so a crash in
between delivers the message again (the inbox makes that harmless). A crash
while the handler runs is not an "attempt": the broker redelivers the message
and the quorum queue's delivery limit bounds a crash loop.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from prometheus_client import Counter
from pydantic import ValidationError

from vectrion_common.contracts import DocumentFailedV1, Event
from vectrion_common.ids import derived_event_id
from vectrion_common.logs import bind_context, clear_context, get_logger
from vectrion_common.messaging.broker import declare_consumer_topology
from vectrion_common.messaging.topology import Topology, dlq_name
from vectrion_common.settings import RetrySettings

log = get_logger(__name__)

ATTEMPT_HEADER = "x-vectrion-attempt"
ERROR_HEADER = "x-vectrion-error"
ERROR_TYPE_HEADER = "x-vectrion-error-type"
PERMANENT_HEADER = "x-vectrion-permanent"
FAILED_AT_HEADER = "x-vectrion-failed-at"
QUEUE_HEADER = "x-vectrion-queue"
CONSUMER_HEADER = "x-vectrion-consumer"
MAX_ERROR_CHARS = 2000

RETRIED = Counter("vectrion_messages_retried_total", "Messages sent to a delay queue", ["consumer", "event_type"])
PARKED = Counter(
    "vectrion_messages_dead_lettered_total", "Messages parked in a DLQ", ["consumer", "event_type", "permanent"]
)


class PermanentError(Exception):
    """Raise from a handler when trying again cannot help: the message fails at once."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_ms: int = 1000
    multiplier: float = 2.0
    max_delay_ms: int = 300_000
    jitter: float = 0.2

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            base_delay_ms=settings.base_delay_ms,
            multiplier=settings.multiplier,
            max_delay_ms=settings.max_delay_ms,
            jitter=settings.jitter,
        )

    def delay_ms(self, failed_attempt: int) -> int:
        """The nominal wait after attempt ``failed_attempt`` (1-based) failed."""
        return min(self.max_delay_ms, round(self.base_delay_ms * self.multiplier ** (failed_attempt - 1)))

    def max_ttl_ms(self, failed_attempt: int) -> int:
        return round(self.delay_ms(failed_attempt) * (1 + self.jitter)) + 1

    def jittered_delay_ms(self, failed_attempt: int, rng: random.Random | None = None) -> int:
        spread = self.jitter * (2 * (rng or random).random() - 1)
        return max(1, round(self.delay_ms(failed_attempt) * (1 + spread)))

    def delays_ms(self) -> list[int]:
        """The distinct nominal delays: one delay queue each."""
        return sorted({self.delay_ms(n) for n in range(1, self.max_attempts)})


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a message was given up on."""

    consumer: str
    queue: str
    attempts: int
    error: str
    permanent: bool


E = TypeVar("E", bound=Event)
Handler = Callable[[E], Awaitable[None]]
# Turns the document ``failed`` (not called for a body that is not even the contract).
FailureReporter = Callable[[Event, Failure], Awaitable[None]]


def failure_event(event: Event, failure: Failure, stage: str) -> DocumentFailedV1:
    """The ``document.failed.v1`` a given-up message causes: one id per (message, consumer)."""
    return DocumentFailedV1(
        event_id=derived_event_id(event.event_id, f"failed:{failure.consumer}"),
        trace=event.trace,
        tenant_id=event.tenant_id,
        document_id=event.document_id,
        generation=event.generation,
        stage=stage,
        reason=f"{failure.error} (after {failure.attempts} attempt{'s' if failure.attempts != 1 else ''})",
        permanent=failure.permanent,
    )


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_CHARS]


@dataclass(slots=True)
class _Subscription(Generic[E]):
    event: type[E]
    handler: Handler[E]


@dataclass(slots=True)
class Consumers:
    """The event subscriptions of one consumer (one service), all retried the same way."""

    broker: RabbitBroker
    topology: Topology
    consumer: str
    policy: RetryPolicy
    report_failure: FailureReporter | None = None
    rng: random.Random = field(default_factory=random.Random)
    _subscriptions: list[_Subscription[Any]] = field(default_factory=list)

    @property
    def events(self) -> list[type[Event]]:
        return [s.event for s in self._subscriptions]

    def subscribe(self, event: type[E], handler: Handler[E]) -> None:
        """Register before ``broker.start()``; :meth:`declare` after ``broker.connect()``."""
        subscription = _Subscription(event, handler)
        self._subscriptions.append(subscription)
        queue = self.topology.consumer_queue(self.consumer, event)

        async def consume(message: RabbitMessage) -> None:
            await self._consume(subscription, queue.name, message)

        consume.__name__ = f"on_{event.event_type.replace('.', '_')}"
        self.broker.subscriber(
            queue,
            self.topology.events,
            ack_policy=AckPolicy.MANUAL,
            title=f"{self.consumer}:{event.event_type}",
        )(consume)

    async def declare(self) -> None:
        """Declare what these messages can be routed to, before any can be: the exchanges, each
        event's DLQ, its work queue (the subscriber declares it too, identically) bound to the
        retry exchange under its own name, and one delay queue per retry delay."""
        await declare_consumer_topology(self.broker, self.topology, self.consumer, self.events)
        retries = await self.broker.declare_exchange(self.topology.retries)
        for event in self.events:
            work = await self.broker.declare_queue(self.topology.consumer_queue(self.consumer, event))
            await work.bind(retries, routing_key=work.name)
            for n in range(1, self.policy.max_attempts):
                await self.broker.declare_queue(
                    self.topology.delay_queue(
                        self.consumer, event, self.policy.delay_ms(n), self.policy.max_ttl_ms(n)
                    )
                )

    async def _consume(self, subscription: _Subscription[Any], queue: str, message: RabbitMessage) -> None:
        raw = message.raw_message
        headers: dict[str, Any] = dict(raw.headers or {})
        attempt = _as_int(headers.get(ATTEMPT_HEADER), default=1)
        event_type = subscription.event.event_type
        try:
            try:
                event = subscription.event.model_validate_json(raw.body)
            except ValidationError as exc:
                error = f"the message is not a valid {event_type}: {describe(exc)}"
                await self._park(message, queue, event_type, attempt, error, "ValidationError", permanent=True)
                await message.ack()
                return
            bind_context(document_id=str(event.document_id), event_id=str(event.event_id), attempt=attempt)
            try:
                await subscription.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._handle_failure(message, queue, event, attempt, exc)
            await message.ack()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Retry/park could not be published (broker or DB trouble): let the broker
            # deliver it again; the work queue's delivery limit ends a loop.
            log.exception("consumer.retry_bookkeeping_failed", queue=queue, attempt=attempt)
            await message.nack(requeue=True)
        finally:
            clear_context("document_id", "event_id", "attempt")

    async def _handle_failure(
        self, message: RabbitMessage, queue: str, event: Event, attempt: int, exc: Exception
    ) -> None:
        permanent = isinstance(exc, PermanentError)
        error = describe(exc)
        # Explicit, not only bound: a handler may have cleared its own log context already.
        ids = {"document_id": str(event.document_id), "event_id": str(event.event_id), "attempt": attempt}
        if not permanent and attempt < self.policy.max_attempts:
            delay = self.policy.jittered_delay_ms(attempt, self.rng)
            log.warning(
                "consumer.retry_scheduled", queue=queue, error=error, delay_ms=delay, next_attempt=attempt + 1, **ids
            )
            await self._schedule_retry(message, event.__class__, attempt, delay, error)
            RETRIED.labels(self.consumer, event.event_type).inc()
            return
        failure = Failure(self.consumer, queue, attempt, error, permanent)
        log.error("consumer.gave_up", queue=queue, error=error, attempts=attempt, permanent=permanent, **ids)
        if self.report_failure is not None:
            try:
                await self.report_failure(event, failure)
            except Exception:
                # Still park it: the message is safe in the DLQ and the stuck-document sweeper
                # fails the document later if no one replays it.
                log.exception("consumer.failure_report_failed", queue=queue)
        await self._park(message, queue, event.event_type, attempt, error, type(exc).__name__, permanent=permanent)

    async def _schedule_retry(
        self, message: RabbitMessage, event: type[Event], attempt: int, delay_ms: int, error: str
    ) -> None:
        raw = message.raw_message
        delay_queue = self.topology.delay_queue(
            self.consumer, event, self.policy.delay_ms(attempt), self.policy.max_ttl_ms(attempt)
        )
        headers = {**dict(raw.headers or {}), ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: error}
        await self.broker.publish(
            raw.body,
            queue=delay_queue.name,
            persist=True,
            headers=headers,
            content_type=raw.content_type or "application/json",
            message_id=raw.message_id,
            message_type=raw.type,
            expiration=delay_ms / 1000,
        )

    async def _park(
        self,
        message: RabbitMessage,
        queue: str,
        event_type: str,
        attempt: int,
        error: str,
        error_type: str,
        *,
        permanent: bool,
    ) -> None:
        raw = message.raw_message
        headers = {
            **dict(raw.headers or {}),
            ATTEMPT_HEADER: attempt,
            ERROR_HEADER: error,
            ERROR_TYPE_HEADER: error_type,
            PERMANENT_HEADER: permanent,
            FAILED_AT_HEADER: datetime.now(UTC).isoformat(),
            QUEUE_HEADER: queue,
            CONSUMER_HEADER: self.consumer,
        }
        await self.broker.publish(
            raw.body,
            exchange=self.topology.dead_letters,
            routing_key=dlq_name(queue),
            persist=True,
            headers=headers,
            content_type=raw.content_type or "application/json",
            message_id=raw.message_id or str(uuid.uuid4()),
            message_type=raw.type or event_type,
        )
        PARKED.labels(self.consumer, event_type, str(permanent).lower()).inc()


def _as_int(value: Any, *, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default

