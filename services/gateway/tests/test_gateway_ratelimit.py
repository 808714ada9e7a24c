"""Rate limits against the real Redis: exact under concurrency, headers, separate budgets, Redis down."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from .conftest import GatewayFactory, bearer, login

DOC = "7d0f7a1e-0000-4000-8000-0000000000d1"


def _upstreams(url: str) -> dict[str, str]:
    return {"ingest_url": url, "query_url": url, "guardrails_url": url}


# Next to nothing refills during the test: the burst is the whole budget.
SLOW_REFILL = {"rate_limit_query_per_minute": 0.01, "rate_limit_upload_per_minute": 0.01}


async def test_exactly_the_limit_is_admitted_out_of_200_requests_from_50_concurrent_clients(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    limit = 37
    client = await gateway(**_upstreams(upstream_url), **SLOW_REFILL, rate_limit_query_burst=limit,
                           redis_max_connections=16)
    auth = bearer(await login(client))
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(200):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            response = await client.post("/v1/query", json={"question": f"q{i}"}, headers=auth)
            statuses[response.status_code] += 1

    await asyncio.gather(*(worker() for _ in range(50)))
    assert statuses == {200: limit, 429: 200 - limit}, statuses


async def test_429_carries_retry_after_and_ratelimit_headers(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(**_upstreams(upstream_url), **SLOW_REFILL, rate_limit_query_burst=2)
    auth = bearer(await login(client))
    first = await client.post("/v1/query", json={"question": "q1"}, headers=auth)
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "2" and first.headers["ratelimit-remaining"] == "1"
    await client.post("/v1/query", json={"question": "q2"}, headers=auth)
    refused = await client.post("/v1/query", json={"question": "q3"}, headers=auth)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"


async def test_query_and_upload_budgets_are_separate_and_per_user_and_per_key(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    client = await gateway(**_upstreams(upstream_url), **SLOW_REFILL, rate_limit_query_burst=1,
                           rate_limit_upload_burst=1)
    admin = bearer(await login(client))
    key = {"X-API-Key": (await client.post("/v1/api-keys", json={"name": "k"}, headers=admin)).json()["key"]}

    async def ask(auth: dict[str, str]) -> int:
        return (await client.post("/v1/query", json={"question": "q"}, headers=auth)).status_code

    async def reprocess(auth: dict[str, str]) -> int:
        return (await client.post(f"/v1/documents/{DOC}/reprocess", headers=auth)).status_code

    assert [await ask(admin), await ask(admin)] == [200, 429]
    assert [await reprocess(admin), await reprocess(admin)] == [200, 429]  # own budget, untouched by queries
    assert [await ask(key), await ask(key)] == [200, 429]  # the key has its own budget
    # Routes without a budget are not limited.
    assert [(await client.get("/v1/documents", headers=admin)).status_code for _ in range(3)] == [200] * 3


async def test_redis_down_fails_uploads_closed_and_limits_queries_locally_never_500(
    gateway: GatewayFactory, upstream_url: str, closed_port_url: str
) -> None:
    healthy = await gateway(**_upstreams(upstream_url))
    token = await login(healthy)  # sessions need Redis; the access token outlives the outage
    dead = closed_port_url.replace("http://", "redis://") + "/0"
    client = await gateway(**_upstreams(upstream_url), **SLOW_REFILL, rate_limit_query_burst=3,
                           redis_url=dead, redis_timeout_seconds=0.2)
    auth = bearer(token)
    upload: Any = await client.post(
        "/v1/documents", files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}, headers=auth
    )
    assert upload.status_code == 503
    assert upload.json()["type"].endswith("/rate-limiter-unavailable")
    assert upload.headers["retry-after"] == "1"
    asked = [(await client.post("/v1/query", json={"question": f"q{i}"}, headers=auth)).status_code
             for i in range(5)]
    assert asked == [200, 200, 200, 429, 429]
    # Logging in needs the session store: a clear 503, not a 500.
    relogin = await client.post("/v1/auth/token", json={"email": "root@example.com",
                                                         "password": "correct horse battery staple"})
    assert relogin.status_code == 503
    assert (await client.get("/v1/usage", headers=auth)).status_code == 200
