"""Retries through delay queues, parking in the DLQ, and the DLQ store: against the real RabbitMQ."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from faststream.rabbit import RabbitBroker

from tests.harness import RABBITMQ_URL
from vectrion_common.contracts import DocumentFailedV1, DocumentIndexedV1, Event
from vectrion_common.messaging.broker import publish_event, publish_payload
from vectrion_common.messaging.dead_letters import DeadLetterStore
from vectrion_common.messaging.failures import publish_failures
from vectrion_common.messaging.retry import Consumers, Failure, PermanentError, RetryPolicy
from vectrion_common.messaging.topology import Topology, dlq_name

FAST = RetryPolicy(max_attempts=4, base_delay_ms=150, multiplier=2.0, max_delay_ms=10_000, jitter=0.1)


def _event() -> DocumentIndexedV1:
    return DocumentIndexedV1(tenant_id=uuid.uuid4(), document_id=uuid.uuid4(), generation=1, chunk_count=3)


class Recorder:
    """A handler that fails while ``failing`` is true, remembering when each attempt ran."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.calls: list[float] = []
        self.failures: list[tuple[Event, Failure]] = []
        self.done = asyncio.Event()

    async def handle(self, event: DocumentIndexedV1) -> None:
        self.calls.append(time.monotonic())
        if self.error is not None:
            raise self.error
        self.done.set()

    async def report(self, event: Event, failure: Failure) -> None:
        self.failures.append((event, failure))
        self.done.set()


@pytest.fixture
def topology(broker_namespace: str) -> Topology:
    return Topology(broker_namespace)


@asynccontextmanager
async def consuming(
    topology: Topology, consumer: str, recorder: Recorder, policy: RetryPolicy = FAST
) -> AsyncIterator[RabbitBroker]:
    broker = RabbitBroker(RABBITMQ_URL)
    consumers = Consumers(broker, topology, consumer, policy, recorder.report, rng=random.Random(4))
    consumers.subscribe(DocumentIndexedV1, recorder.handle)
    await broker.connect()
    await consumers.declare()
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.fixture
async def dead_letters(topology: Topology) -> AsyncIterator[DeadLetterStore]:
    store = DeadLetterStore(RABBITMQ_URL, topology)
    await store.start()
    yield store
    await store.close()


async def _wait(condition: Callable[[], Awaitable[bool]], polls: int = 200) -> None:
    for _ in range(polls):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_backoff_grows_exponentially_within_the_jitter() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_ms=1000, multiplier=2.0, max_delay_ms=5000, jitter=0.2)
    assert [policy.delay_ms(n) for n in range(1, 6)] == [1000, 2000, 4000, 5000, 5000]
    assert policy.delays_ms() == [1000, 2000, 4000, 5000]
    rng = random.Random(1)
    samples = [policy.jittered_delay_ms(2, rng) for _ in range(500)]
    assert 1600 <= min(samples) < 1700 and 2300 < max(samples) <= 2400
    assert policy.max_ttl_ms(2) >= max(samples)


async def test_a_transient_error_is_retried_max_attempts_times_with_growing_delays_then_parked(
    topology: Topology, dead_letters: DeadLetterStore
) -> None:
    consumer = f"retry-{uuid.uuid4().hex[:6]}"
    recorder = Recorder(ConnectionError("storage unreachable"))
    event = _event()
    async with consuming(topology, consumer, recorder) as broker:
        await publish_event(broker, topology, event)
        await asyncio.wait_for(recorder.done.wait(), 15)
        await asyncio.sleep(0.5)  # no further attempt arrives

    assert len(recorder.calls) == FAST.max_attempts
    gaps_ms = [(b - a) * 1000 for a, b in zip(recorder.calls, recorder.calls[1:], strict=False)]
    for n, gap in enumerate(gaps_ms, start=1):
        nominal = FAST.delay_ms(n)
        assert nominal * (1 - FAST.jitter) - 20 <= gap <= nominal * (1 + FAST.jitter) + 400, (n, gaps_ms)
    assert gaps_ms == sorted(gaps_ms), gaps_ms

    ((reported, failure),) = recorder.failures
    assert reported == event
    assert failure.attempts == FAST.max_attempts and not failure.permanent
    assert failure.error == "ConnectionError: storage unreachable"

    queue = dlq_name(topology.queue_name(consumer, DocumentIndexedV1))
    (parked,) = await dead_letters.list_messages(queue)
    assert parked.message_id == str(event.event_id)
    assert parked.document_id == str(event.document_id)
    assert parked.error == "ConnectionError: storage unreachable"
    assert parked.attempts == FAST.max_attempts and parked.permanent is False
    assert parked.consumer == consumer and parked.event_type == DocumentIndexedV1.event_type
    # Listing gives the messages back: a second look sees the same one.
    assert [p.message_id for p in await dead_letters.list_messages(queue)] == [parked.message_id]


async def test_a_permanent_error_is_parked_at_once_without_retries(
    topology: Topology, dead_letters: DeadLetterStore
) -> None:
    consumer = f"perm-{uuid.uuid4().hex[:6]}"
    recorder = Recorder(PermanentError("the PDF is encrypted"))
    async with consuming(topology, consumer, recorder) as broker:
        await publish_event(broker, topology, _event())
        await asyncio.wait_for(recorder.done.wait(), 10)
        await asyncio.sleep(FAST.delay_ms(1) / 1000 * 2)

    assert len(recorder.calls) == 1
    ((_, failure),) = recorder.failures
    assert failure.permanent and failure.attempts == 1
    (parked,) = await dead_letters.list_messages(dlq_name(topology.queue_name(consumer, DocumentIndexedV1)))
    assert parked.permanent is True and parked.error == "PermanentError: the PDF is encrypted"


async def test_a_message_that_is_not_the_contract_is_parked_without_a_report(
    topology: Topology, dead_letters: DeadLetterStore
) -> None:
    consumer = f"bad-{uuid.uuid4().hex[:6]}"
    recorder = Recorder(None)
    queue = dlq_name(topology.queue_name(consumer, DocumentIndexedV1))
    async with consuming(topology, consumer, recorder) as broker:
        await publish_payload(
            broker, topology, DocumentIndexedV1.event_type, {"document_id": "not-a-uuid"}, str(uuid.uuid4()), {}
        )
        await _wait(lambda: _count(dead_letters, queue, 1))
    assert recorder.calls == [] and recorder.failures == []
    (parked,) = await dead_letters.list_messages(queue)
    assert parked.error is not None and parked.error.startswith("the message is not a valid document.indexed.v1")


async def test_replay_after_the_fault_is_fixed_completes_and_purge_drops(
    topology: Topology, dead_letters: DeadLetterStore
) -> None:
    consumer = f"replay-{uuid.uuid4().hex[:6]}"
    policy = RetryPolicy(max_attempts=2, base_delay_ms=50, jitter=0.0)
    recorder = Recorder(TimeoutError("model server busy"))
    queue = dlq_name(topology.queue_name(consumer, DocumentIndexedV1))
    first, second = _event(), _event()
    async with consuming(topology, consumer, recorder, policy) as broker:
        await publish_event(broker, topology, first)
        await publish_event(broker, topology, second)
        await _wait(lambda: _count(dead_letters, queue, 2))
        assert len(recorder.calls) == 4

        recorder.error = None  # the fault is fixed
        recorder.done.clear()
        (replayed,) = await dead_letters.replay(str(first.event_id), queue)
        assert replayed.queue == queue
        await asyncio.wait_for(recorder.done.wait(), 10)
        assert len(recorder.calls) == 5

        assert [p.message_id for p in await dead_letters.list_messages(queue)] == [str(second.event_id)]
        assert await dead_letters.replay(str(first.event_id), queue) == []  # already gone
        (purged,) = await dead_letters.purge(str(second.event_id), queue)
        assert purged.message_id == str(second.event_id)
        assert await dead_letters.list_messages(queue) == []
    assert len(recorder.calls) == 5


async def _count(store: DeadLetterStore, queue: str, expected: int) -> bool:
    return len(await store.list_messages(queue)) >= expected


async def test_a_given_up_failure_report_is_not_reported_again(topology: Topology) -> None:
    """A document.failed.v1 that a consumer gave up on must not cause another one: it would come back
    to the same consumer, and the document is failed already."""
    import aio_pika

    broker = RabbitBroker(RABBITMQ_URL)
    await broker.connect()
    await broker.declare_exchange(topology.events)
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        probe = await channel.declare_queue(exclusive=True)
        await probe.bind(topology.events.name, routing_key=DocumentFailedV1.event_type)
        report = publish_failures(broker, topology, "probe-stage")
        failure = Failure("probe-stage", "q", 4, "RuntimeError: down", permanent=False)
        given_up = DocumentFailedV1(
            tenant_id=uuid.uuid4(), document_id=uuid.uuid4(), generation=1, stage="chunk", reason="x"
        )
        await report(given_up, failure)
        await report(_event(), failure)
        await asyncio.sleep(0.3)
        first = await probe.get(no_ack=True, fail=False)
        second = await probe.get(no_ack=True, fail=False)
    finally:
        await connection.close()
        await broker.stop()
    assert first is not None and second is None  # only the DocumentIndexedV1's failure was reported
    reported = DocumentFailedV1.model_validate_json(first.body)
    assert reported.document_id != given_up.document_id and reported.stage == "probe-stage"
