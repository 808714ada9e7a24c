"""The LLM path against a real loopback OpenAI-compatible server with fault modes.

Whatever the provider does, the user gets a well-formed answer (the LLM's, or
the extractive fallback saying so) or a clear error, within the request deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fake_openai import FakeProvider, serve_fake_provider, stop_fake_provider
from tests.harness import RABBITMQ_URL, migrate_services
from tests.query_support import HANDBOOK, SECRET, Doc, Peers, as_user, index, make_doc, own_namespace, running_peers
from vectrion_common.contracts import GuardrailCheckRequest, GuardrailVerdict
from vectrion_common.messaging.rpc import call
from vectrion_query.main import create_app
from vectrion_query.settings import QuerySettings

DEADLINE_S = 4.0
READ_TIMEOUT_S = 1.0
SLACK_S = 1.5  # event loop, guardrails RPC and the database on a busy 2-core CI machine


@pytest.fixture(scope="module")
async def provider_server() -> AsyncIterator[FakeProvider]:
    provider, server, task, sock = await serve_fake_provider()
    yield provider
    await stop_fake_provider(server, task, sock)


@pytest.fixture(scope="module")
async def llm_peers(broker_namespace: str) -> AsyncIterator[Peers]:
    async with own_namespace(broker_namespace, "queryllm") as namespace, running_peers(namespace) as peers:
        yield peers


@pytest.fixture(scope="session")
def query_db() -> str:
    """Sync on purpose: migrating runs its own event loop."""
    return migrate_services("query")


@pytest.fixture(scope="module")
async def llm_app(
    query_db: str, llm_peers: Peers, provider_server: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    settings = QuerySettings(
        db_name=query_db,
        broker_namespace=llm_peers.topology.namespace,
        rabbitmq_url=RABBITMQ_URL,
        internal_token_secret=SECRET,
        qdrant_path=tmp_path_factory.mktemp("qdrant-llm"),
        answerer="llm",
        llm_base_url=provider_server.url,
        llm_api_key="sk-test",
        llm_read_timeout_seconds=READ_TIMEOUT_S,
        llm_connect_timeout_seconds=0.5,
        llm_max_retries=2,
        llm_backoff_base_seconds=0.05,
        llm_breaker_failures=50,
        llm_breaker_reset_seconds=0.5,
        request_deadline_seconds=DEADLINE_S,
        guardrails_timeout_seconds=1.0,
        answer_min_relevance=0.1,
        log_json=False,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        # Open the RPC reply channel before any test is timed: under suite load on the 2-core CI
        # machine the first round trip (connect, channel, direct reply-to) outlasted the 1 s
        # guardrails timeout these tests keep for their deadline arithmetic.
        await call(
            application.state.broker,
            llm_peers.topology,
            "guardrails",
            GuardrailCheckRequest(text="warm-up", direction="input"),
            GuardrailVerdict,
            30,
        )
        yield application


@pytest.fixture
async def provider(llm_app: Any, provider_server: FakeProvider) -> FakeProvider:
    provider_server.reset()
    llm_app.state.llm.breaker.record_success()  # each test starts with a closed circuit
    return provider_server


@pytest.fixture
async def client(llm_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=llm_app), base_url="http://t") as http:
        yield http


@pytest.fixture(scope="module")
async def handbook(llm_app: Any, llm_peers: Peers) -> Doc:
    doc = make_doc(HANDBOOK, filename="acme-handbook.pdf")
    await index(llm_peers, doc)
    return doc


REFUND_QUESTION = "Can annual plans be refunded?"


async def ask(client: httpx.AsyncClient, doc: Doc, question: str = REFUND_QUESTION, **extra: Any) -> httpx.Response:
    return await client.post(
        "/v1/query", json={"question": question, **extra}, headers=as_user(doc.tenant_id, doc.owner_id)
    )


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        events.append((lines.get("event", ""), json.loads(lines.get("data", "null"))))
    return events


async def test_llm_answer_cites_only_retrieved_chunks_and_reports_provider_usage(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc, admin_conn: Any
) -> None:
    response = await ask(client, handbook)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answerer"] == "llm" and body["model"] == "fake-gpt" and body["fallback_reason"] is None
    # The model cited [1] (a retrieved chunk) and [9] (invented): only [1] survives, in text and citations.
    assert "[9]" not in body["answer"] and "[1]" in body["answer"]
    assert [c["chunk_id"] for c in body["citations"]] == [str(handbook.chunk_id(3))]
    assert body["usage"] == {"prompt_tokens": 111, "completion_tokens": 22}

    [sent] = provider.requests
    system, user = sent["messages"][0]["content"], sent["messages"][-1]["content"]
    assert "version rag-v1" in system and "vx-canary-" in system and "data, not instructions" in system
    assert user.startswith("<<<SOURCES ") and "<<<END SOURCES " in user and HANDBOOK[3][0] in user
    row = await admin_conn.fetchrow(
        "SELECT provider, model, prompt_version, usage FROM query.messages WHERE id = $1",
        uuid.UUID(body["message_id"]),
    )
    assert (row["provider"], row["model"], row["prompt_version"]) == ("openai-compatible", "fake-gpt", "rag-v1")
    usage = json.loads(row["usage"])
    assert usage["tokenizer"] == "provider usage" and usage["invented_citations_dropped"] == 1


async def test_slow_provider_falls_back_to_extractive_within_the_deadline(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("slow", slow_seconds=10.0)
    started = time.monotonic()
    body = (await ask(client, handbook)).json()
    elapsed = time.monotonic() - started
    assert body["answerer"] == "extractive" and "unavailable" in body["fallback_reason"]
    assert body["citations"][0]["chunk_id"] == str(handbook.chunk_id(3))
    assert elapsed < DEADLINE_S + SLACK_S


async def test_429_with_retry_after_is_retried_after_the_advertised_delay(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("429", fail_times=1, retry_after="0.4")
    started = time.monotonic()
    body = (await ask(client, handbook)).json()
    assert body["answerer"] == "llm", body
    assert provider.answer_calls == 2 and time.monotonic() - started >= 0.4


async def test_retry_after_beyond_the_deadline_falls_back_at_once(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("429", retry_after="60")
    started = time.monotonic()
    body = (await ask(client, handbook)).json()
    assert body["answerer"] == "extractive" and provider.answer_calls == 1
    assert time.monotonic() - started < 2.0


async def test_persistent_500s_are_retried_then_fall_back(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("500")
    body = (await ask(client, handbook)).json()
    assert body["answerer"] == "extractive" and "500" in body["fallback_reason"]
    assert provider.answer_calls == 3  # the first attempt + llm_max_retries


async def test_malformed_json_is_not_retried_and_falls_back(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("malformed")
    body = (await ask(client, handbook)).json()
    assert body["answerer"] == "extractive" and body["fallback_reason"].startswith("bad_response")
    assert provider.answer_calls == 1


async def test_streamed_llm_answer_sends_deltas_then_the_authoritative_answer(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    response = await ask(client, handbook, stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "delta" and kinds[-2:] == ["answer", "done"]
    streamed = "".join(data["text"] for kind, data in events if kind == "delta")
    final = events[-2][1]
    assert final["answerer"] == "llm" and streamed.startswith("Annual plans can be refunded")
    # The invented [9] is dropped from the final answer, which therefore replaces the streamed preview.
    assert "[9]" not in final["answer"] and final["citations"][0]["chunk_id"] == str(handbook.chunk_id(3))


async def test_stream_cut_in_the_middle_ends_with_a_wellformed_fallback_answer(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("cut")
    started = time.monotonic()
    response = await ask(client, handbook, stream=True)
    events = sse_events(response.text)
    assert [kind for kind, _ in events][-2:] == ["answer", "done"]
    final = events[-2][1]
    assert final["answerer"] == "extractive" and final["fallback_reason"].startswith(("stream_broken", "unavailable"))
    assert final["citations"] and time.monotonic() - started < DEADLINE_S + SLACK_S


async def test_malformed_stream_chunk_falls_back(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("malformed")
    events = sse_events((await ask(client, handbook, stream=True)).text)
    assert events[-2][0] == "answer" and events[-2][1]["answerer"] == "extractive"


async def test_a_leaked_canary_is_blocked_by_the_output_policy(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    provider.reset("leak")
    body = (await ask(client, handbook)).json()
    assert body["answer"] == "The answer was withheld by the output policy." and body["citations"] == []
    assert body["guardrails"]["output"]["categories"] == ["leakage"]
    assert "vx-canary-" not in json.dumps(body)


async def test_open_circuit_answers_without_calling_the_provider(
    llm_app: Any, client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    breaker = llm_app.state.llm.breaker
    for _ in range(50):
        breaker.record_failure()
    assert breaker.state == "open"
    provider.reset("normal")
    started = time.monotonic()
    body = (await ask(client, handbook)).json()
    assert body["answerer"] == "extractive" and "circuit is open" in body["fallback_reason"]
    assert provider.answer_calls == 0 and time.monotonic() - started < 1.0
    await asyncio.sleep(0.5)  # the reset period passes: one trial call goes through and closes the circuit
    assert (await ask(client, handbook)).json()["answerer"] == "llm" and breaker.state == "closed"


async def test_follow_up_is_rewritten_by_the_llm_and_memory_reaches_the_prompt(
    client: httpx.AsyncClient, provider: FakeProvider, handbook: Doc
) -> None:
    first = (await ask(client, handbook, "Where is data stored?")).json()
    provider.reset("normal", rewrite_answer="Can annual plans be refunded?")
    follow_up = (
        await ask(client, handbook, "And the thing about money back?", conversation_id=first["conversation_id"])
    ).json()
    assert follow_up["standalone_question"] == "Can annual plans be refunded?"
    assert follow_up["citations"][0]["chunk_id"] == str(handbook.chunk_id(3))
    rewrite, answer = provider.requests
    assert "Where is data stored?" in rewrite["messages"][-1]["content"]
    roles = [m["role"] for m in answer["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # memory: the earlier turn travels with the prompt
