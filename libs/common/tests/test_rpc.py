"""Request/reply over the real RabbitMQ: the lean RPC server and the direct reply-to client."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from faststream.rabbit import RabbitBroker
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from tests.harness import RABBITMQ_URL
from vectrion_common.messaging.rpc import RpcFailed, RpcServer, call
from vectrion_common.messaging.topology import Topology


class Ask(BaseModel):
    text: str
    delay: float = 0.0
    fail: bool = False


class Answer(BaseModel):
    text: str


async def finished_spans(spans: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The server's spans once ``count`` have ended (a span ends just after its reply is sent)."""
    for _ in range(500):
        if len(spans.get_finished_spans()) >= count:
            break
        await asyncio.sleep(0.01)
    return list(spans.get_finished_spans())


@pytest.fixture
async def served(broker_namespace: str) -> AsyncIterator[tuple[RabbitBroker, Topology, InMemorySpanExporter]]:
    """A server answering ``echo`` (upper-cased text) and a separate caller broker."""
    topology = Topology(f"{broker_namespace}.t{uuid.uuid4().hex[:6]}")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    server_broker, caller = RabbitBroker(RABBITMQ_URL), RabbitBroker(RABBITMQ_URL)
    server = RpcServer(server_broker, provider)

    async def echo(request: Ask) -> Answer:
        await asyncio.sleep(request.delay)
        if request.fail:
            raise RuntimeError("the handler broke")
        return Answer(text=request.text.upper())

    server.route(topology.rpc_queue("echo"), Ask, echo, prefetch=8)
    await server_broker.connect()
    await server.start()
    await caller.connect()
    try:
        yield caller, topology, spans
    finally:
        await server.stop()
        await server_broker.stop()
        await caller.stop()


async def test_concurrent_requests_each_get_their_own_reply(
    served: tuple[RabbitBroker, Topology, InMemorySpanExporter],
) -> None:
    caller, topology, _ = served
    texts = [f"question {i}" for i in range(20)]
    # Later requests answer first (shorter delays): replies are matched by correlation id, not order.
    replies = await asyncio.gather(
        *(
            call(caller, topology, "echo", Ask(text=t, delay=0.02 * (20 - i) / 20), Answer, 10)
            for i, t in enumerate(texts)
        )
    )
    assert [r.text for r in replies] == [t.upper() for t in texts]


async def test_a_failing_handler_is_reported_at_once_not_at_the_timeout(
    served: tuple[RabbitBroker, Topology, InMemorySpanExporter],
) -> None:
    caller, topology, spans = served
    started = time.perf_counter()
    with pytest.raises(RpcFailed, match="echo failed: RuntimeError"):
        await call(caller, topology, "echo", Ask(text="x", fail=True), Answer, 10)
    assert time.perf_counter() - started < 5
    failed = [s for s in await finished_spans(spans, 1) if s.status.status_code.name == "ERROR"]
    assert len(failed) == 1 and failed[0].name.endswith(".rpc.echo process")
    # The server keeps answering after a failure.
    assert (await call(caller, topology, "echo", Ask(text="ok"), Answer, 10)).text == "OK"


async def test_a_request_that_is_not_the_contract_is_refused_with_a_reason(
    served: tuple[RabbitBroker, Topology, InMemorySpanExporter],
) -> None:
    caller, topology, _ = served

    class NotAsk(BaseModel):
        question: int

    with pytest.raises(RpcFailed, match="echo failed: invalid request: 1 errors"):
        await call(caller, topology, "echo", NotAsk(question=1), Answer, 10)


async def test_the_callers_trace_continues_in_the_servers_span(
    served: tuple[RabbitBroker, Topology, InMemorySpanExporter],
) -> None:
    caller, topology, spans = served
    tracer = TracerProvider().get_tracer("caller")
    with tracer.start_as_current_span("caller request") as parent:
        await call(caller, topology, "echo", Ask(text="traced"), Answer, 10)
    (served_span,) = await finished_spans(spans, 1)
    assert served_span.context.trace_id == parent.get_span_context().trace_id
    assert served_span.parent is not None and served_span.parent.span_id == parent.get_span_context().span_id


async def test_a_faststream_caller_gets_the_same_reply(
    served: tuple[RabbitBroker, Topology, InMemorySpanExporter],
) -> None:
    caller, topology, _ = served
    response = await caller.request(Ask(text="compatible").model_dump(), queue=topology.rpc_queue("echo"), timeout=10)
    assert Answer.model_validate(await response.decode()).text == "COMPATIBLE"


async def test_stop_lets_a_request_in_progress_answer(broker_namespace: str) -> None:
    topology = Topology(f"{broker_namespace}.t{uuid.uuid4().hex[:6]}")
    server_broker, caller = RabbitBroker(RABBITMQ_URL), RabbitBroker(RABBITMQ_URL)
    server = RpcServer(server_broker)
    entered = asyncio.Event()

    async def slow(request: Ask) -> Answer:
        entered.set()
        await asyncio.sleep(0.3)
        return Answer(text=request.text)

    server.route(topology.rpc_queue("slow"), Ask, slow, prefetch=1)
    await server_broker.connect()
    await server.start()
    await caller.connect()
    try:
        pending = asyncio.create_task(call(caller, topology, "slow", Ask(text="finish me"), Answer, 10))
        await asyncio.wait_for(entered.wait(), 10)
        await server.stop()
        assert (await pending).text == "finish me"
        # Stopped: a new request is not answered.
        with pytest.raises(RpcFailed, match="did not answer"):
            await call(caller, topology, "slow", Ask(text="too late"), Answer, 0.5)
    finally:
        await server_broker.stop()
        await caller.stop()
