"""The official ``openai`` package talks to the gateway's ``/v1/chat/completions`` unchanged.

Real path: openai client -> gateway (in-process ASGI: auth, signed identity,
streaming proxy) -> the query service under uvicorn on a loopback port (real
HTTP) -> retrieval + extractive answer + guardrails RPC stand-in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from tests.fake_openai import free_socket
from tests.harness import RABBITMQ_URL, migrate_services
from tests.query_support import HANDBOOK, SECRET, Doc, Peers, index, make_doc, own_namespace, running_peers
from vectrion_gateway.main import create_app as create_gateway
from vectrion_gateway.settings import GatewaySettings
from vectrion_query.main import create_app as create_query
from vectrion_query.settings import QuerySettings

ADMIN_EMAIL = "openai-client@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
JWT_SECRET = "openai-client-test-jwt-secret-0123456789"


@pytest.fixture(scope="module")
def dbs() -> str:
    migrate_services("gateway")
    return migrate_services("query")


@pytest.fixture(scope="module")
async def peers(broker_namespace: str) -> AsyncIterator[Peers]:
    async with own_namespace(broker_namespace, "queryoai") as namespace, running_peers(namespace) as found:
        yield found


@pytest.fixture(scope="module")
async def query_url(dbs: str, peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    app = create_query(
        QuerySettings(
            db_name=dbs,
            broker_namespace=peers.topology.namespace,
            rabbitmq_url=RABBITMQ_URL,
            internal_token_secret=SECRET,
            qdrant_path=tmp_path_factory.mktemp("qdrant-oai"),
            log_json=False,
        )
    )
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the query service did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task
    sock.close()


async def _clean_gateway(admin_conn: Any) -> None:
    await admin_conn.execute("DELETE FROM gateway.users")
    await admin_conn.execute("DELETE FROM gateway.tenants")


@pytest.fixture
async def gateway(query_url: str, admin_conn: Any) -> AsyncIterator[httpx.AsyncClient]:
    await _clean_gateway(admin_conn)
    app = create_gateway(
        GatewaySettings(
            db_name=migrate_services("gateway"),
            jwt_secret=JWT_SECRET,
            internal_token_secret=SECRET,
            bootstrap_admin_email=ADMIN_EMAIL,
            bootstrap_admin_password=ADMIN_PASSWORD,
            query_url=query_url,
            log_json=False,
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        yield client
    await _clean_gateway(admin_conn)  # a platform admin left behind would stop the next gateway's bootstrap


async def _login_and_index(gateway: httpx.AsyncClient, admin_conn: Any, peers: Peers) -> tuple[str, Doc]:
    token = (await gateway.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).json()
    user = await admin_conn.fetchrow("SELECT id, tenant_id FROM gateway.users WHERE email = $1", ADMIN_EMAIL)
    doc = make_doc(HANDBOOK, tenant_id=user["tenant_id"], owner_id=user["id"], filename="acme-handbook.pdf")
    await index(peers, doc)
    return str(token["access_token"]), doc


def _client(gateway: httpx.AsyncClient, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://gateway/v1", api_key=token, http_client=gateway, max_retries=0)


async def test_openai_package_gets_a_cited_completion_and_a_stream(
    gateway: httpx.AsyncClient, admin_conn: Any, peers: Peers
) -> None:
    token, doc = await _login_and_index(gateway, admin_conn, peers)
    client = _client(gateway, token)

    completion = await client.chat.completions.create(
        model="vectrion-rag", messages=[{"role": "user", "content": "Can annual plans be refunded?"}]
    )
    assert completion.model == "vectrion-rag" and completion.choices[0].finish_reason == "stop"
    assert "Annual plans can be refunded within 30 days" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    extra = (completion.model_extra or {})["vectrion"]
    assert extra["citations"][0]["chunk_id"] == str(doc.chunk_id(3)) and extra["citations"][0]["page"] == 3

    stream = await client.chat.completions.create(
        model="vectrion-rag",
        messages=[
            {"role": "user", "content": "Where is data stored?"},
            {"role": "assistant", "content": "In the European Union."},
            {"role": "user", "content": "Is it encrypted?"},
        ],
        stream=True,
    )
    text, last_extra = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            if chunk.choices[0].finish_reason == "stop":
                last_extra = (chunk.model_extra or {}).get("vectrion")
    assert "encrypted at rest" in text
    assert last_extra is not None and last_extra["citations"][0]["chunk_id"] == str(doc.chunk_id(5))


async def test_openai_package_sees_clear_errors(gateway: httpx.AsyncClient, admin_conn: Any, peers: Peers) -> None:
    token, _ = await _login_and_index(gateway, admin_conn, peers)
    with pytest.raises(openai.NotFoundError):
        await _client(gateway, token).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.AuthenticationError):
        await _client(gateway, "not-a-token").chat.completions.create(
            model="vectrion-rag", messages=[{"role": "user", "content": "hi"}]
        )
