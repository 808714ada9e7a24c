"""Gateway fixtures: the migrated test DB, a gateway app with its lifespan, a real loopback upstream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.harness import ADMIN_URL, TEST_DB, migrate_services
from vectrion_common.identity import IDENTITY_HEADER, verify_identity
from vectrion_common.problems import ProblemError
from vectrion_gateway.main import create_app
from vectrion_gateway.settings import GatewaySettings

JWT_SECRET = "gateway-test-jwt-secret-0123456789abcdef"
INTERNAL_SECRET = "gateway-test-internal-secret-0123456789"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
# Redis is shared by every concurrent run: keys of this session live under their own prefix.
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_PREFIX = f"vtest:{TEST_DB}:{uuid.uuid4().hex[:8]}"


def make_settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "db_name": TEST_DB,
        "jwt_secret": JWT_SECRET,
        "internal_token_secret": INTERNAL_SECRET,
        "bootstrap_admin_email": ADMIN_EMAIL,
        "bootstrap_admin_password": ADMIN_PASSWORD,
        "log_json": False,
        "redis_key_prefix": REDIS_PREFIX,
        "cache_settle_seconds": 0,
        # Off unless a test is about it: each gateway with events declares its queues on the
        # shared RabbitMQ (see test_gateway_cache_events.py).
        "cache_invalidation_events": False,
        **overrides,
    }
    return GatewaySettings(**values)


@pytest.fixture(scope="session")
def gateway_db() -> str:
    # Sync on purpose: migrate_services drives its own event loop (asyncio.run).
    return migrate_services("gateway")


@pytest.fixture
async def admin_conn(gateway_db: str) -> AsyncIterator[Any]:
    """Superuser connection to the test DB.

    Shadows the root ``admin_conn``: that one calls ``migrate_services()``,
    whose ``asyncio.run`` fails inside the running test loop, and under
    ``--import-mode=importlib`` ``from conftest import migrate_services`` is a
    second copy of the module, so our sync ``gateway_db`` call cannot mark the
    root one's state as provisioned.
    """
    conn = await asyncpg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + gateway_db)
    try:
        yield conn
    finally:
        await conn.close()


async def _delete_gateway_rows(conn: Any) -> None:
    await conn.execute("DELETE FROM gateway.usage_ledger")
    await conn.execute("DELETE FROM gateway.api_keys")
    await conn.execute("DELETE FROM gateway.users")
    await conn.execute("DELETE FROM gateway.tenants")


@pytest.fixture
async def clean_gateway(admin_conn: Any) -> AsyncIterator[None]:
    """Empty gateway tables before and after: a platform admin left behind would stop
    the next gateway started on this DB (e.g. the e2e stack) from bootstrapping its own."""
    await _delete_gateway_rows(admin_conn)
    yield
    await _delete_gateway_rows(admin_conn)


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def gateway(clean_gateway: None) -> AsyncIterator[GatewayFactory]:
    """Call with settings overrides; yields an httpx client on a started gateway app.

    Gateways started in one test share a Redis key prefix (like replicas), no other test's.
    """
    stack: list[Any] = []
    prefix = f"{REDIS_PREFIX}:{uuid.uuid4().hex[:8]}"

    async def start(**overrides: Any) -> httpx.AsyncClient:
        app = create_app(make_settings(**{"redis_key_prefix": prefix, **overrides}))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        stack.append((lifespan, client))
        return client

    yield start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    await drop_redis_keys(prefix)


async def drop_redis_keys(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_tenant(client: httpx.AsyncClient, admin: dict[str, str], name: str) -> str:
    response = await client.post("/v1/admin/tenants", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    tenant_id: str = response.json()["id"]
    return tenant_id


async def new_user(
    client: httpx.AsyncClient, admin: dict[str, str], email: str, role: str, tenant_id: str | None = None
) -> tuple[str, dict[str, str]]:
    """Create a user; returns (user id, their bearer headers)."""
    body = {"email": email, "password": "password-123", "role": role, "tenant_id": tenant_id}
    response = await client.post("/v1/admin/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["id"], bearer(await login(client, email, "password-123"))


async def login(client: httpx.AsyncClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
    response = await client.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# --- a real HTTP upstream on a loopback port -------------------------------------


async def _echo(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    identity: dict[str, str] | None = None
    identity_error: str | None = None
    token = request.headers.get(IDENTITY_HEADER)
    if token:
        try:
            verified = verify_identity(token, INTERNAL_SECRET)
            identity = {"user_id": str(verified.user_id), "tenant_id": str(verified.tenant_id), "role": verified.role}
        except ProblemError as exc:
            identity_error = exc.detail
    cookie = {"Set-Cookie": "upstream-session=for-one-caller-only; Path=/"}
    if "set_cookie" not in request.query_params:
        cookie = {}
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_sha256": digest.hexdigest(),
            "body_size": size,
            "identity": identity,
            "identity_error": identity_error,
        },
        status_code=int(request.query_params.get("echo_status", "200")),
        headers={"X-Upstream": "echo", **cookie},
    )


QUERY_USAGE = {"prompt_tokens": 120, "completion_tokens": 30}
query_calls: list[dict[str, Any]] = []


async def _query(request: Request) -> Response:
    """A stand-in query service: answers with `usage`, counts its calls, streams when asked."""
    body = await request.json() if await request.body() else {}
    token = request.headers.get(IDENTITY_HEADER)
    identity = verify_identity(token, INTERNAL_SECRET) if token else None
    query_calls.append({"question": body.get("question"), "tenant_id": str(identity.tenant_id) if identity else None})
    await asyncio.sleep(float(request.query_params.get("delay", "0")))
    answer = {
        "method": request.method,
        "path": request.url.path,
        "answer": f"answer #{len(query_calls)} to {body.get('question')!r}",
        "tenant_id": str(identity.tenant_id) if identity else None,
        "citations": [],
        "conversation_id": body.get("conversation_id") or str(uuid.uuid4()),
        "usage": QUERY_USAGE,
    }
    if body.get("stream"):
        async def events() -> AsyncIterator[str]:
            yield f"event: answer\ndata: {json.dumps(answer)}\n\n"
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return JSONResponse(answer)


async def _slow(_: Request) -> Response:
    await asyncio.sleep(5)
    return Response("too late")


async def _stream(_: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: {i}\n\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/event-stream")


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
echo_app = Starlette(
    routes=[
        Route("/v1/search", _slow, methods=ALL_METHODS),
        Route("/v1/conversations", _stream, methods=ALL_METHODS),
        Route("/v1/query", _query, methods=["POST"]),
        Route("/{path:path}", _echo, methods=ALL_METHODS),
    ]
)


def free_port_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app under uvicorn on a free loopback port (a real socket)."""
    sock = free_port_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn exposes a flag, not an event
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the loopback upstream did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="session")
async def upstream_url() -> AsyncIterator[str]:
    """An echo service under uvicorn on 127.0.0.1 (a real socket, not an in-process transport).

    ``/v1/search`` never answers in time and ``/v1/conversations`` streams SSE
    chunks; ``/v1/query`` answers like the query service; every other path
    echoes what it received.
    """
    async with serve(echo_app) as url:
        yield url


@pytest.fixture(scope="session")
async def fast_upstream_url() -> AsyncIterator[str]:
    """Like ``upstream_url`` but every route answers at once (for fuzzing)."""
    app = Starlette(routes=[Route("/v1/query", _query, methods=["POST"]),
                            Route("/{path:path}", _echo, methods=ALL_METHODS)])
    async with serve(app) as url:
        yield url


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nobody listens on."""
    sock = free_port_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
