"""Token quotas: reserve before, settle after, exact under concurrency, Redis as a reconciled hot counter."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import QUERY_USAGE, GatewayFactory, bearer, login, new_tenant, new_user

USED = QUERY_USAGE["prompt_tokens"] + QUERY_USAGE["completion_tokens"]  # what one stub answer reports
RESERVE = 1000


def _upstreams(url: str) -> dict[str, str]:
    return {"ingest_url": url, "query_url": url, "guardrails_url": url}


async def _ledger(admin_conn: Any) -> list[Any]:
    rows: list[Any] = await admin_conn.fetch("SELECT * FROM gateway.usage_ledger ORDER BY occurred_at")
    return rows


async def test_a_query_reserves_its_worst_case_and_settles_the_reported_usage(
    gateway: GatewayFactory, upstream_url: str, admin_conn: Any
) -> None:
    client = await gateway(**_upstreams(upstream_url), query_reservation_tokens=RESERVE)
    auth = bearer(await login(client))
    response = await client.post("/v1/query", json={"question": "what?"}, headers=auth)
    assert response.status_code == 200
    (row,) = await _ledger(admin_conn)
    assert row["status"] == "settled" and row["reserved_tokens"] == RESERVE
    assert (row["prompt_tokens"], row["completion_tokens"]) == (120, 30)
    usage = (await client.get("/v1/usage", headers=auth)).json()
    assert usage["user"]["day"]["used"] == usage["tenant"]["month"]["used"] == USED
    assert usage["user"]["day"]["limit"] is None


async def test_concurrent_queries_never_overspend_the_quota(
    gateway: GatewayFactory, upstream_url: str, admin_conn: Any
) -> None:
    # Room for exactly 5 worst cases; 40 questions race for it.
    client = await gateway(**_upstreams(upstream_url), query_reservation_tokens=RESERVE,
                           default_user_daily_tokens=5 * RESERVE, rate_limit_query_burst=100, cache_enabled=False)
    auth = bearer(await login(client))
    responses = await asyncio.gather(*(
        client.post("/v1/query", params={"delay": "0.05"}, json={"question": f"q{i}"}, headers=auth)
        for i in range(40)
    ))
    statuses = [r.status_code for r in responses]
    # While 5 reservations are outstanding nobody else fits; settled ones free room for a few more.
    admitted = statuses.count(200)
    assert admitted >= 5 and statuses.count(429) == 40 - admitted
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["type"].endswith("/quota-exceeded") and refused.json()["quota"] == "user.day"
    assert int(refused.headers["retry-after"]) > 0
    spent = sum((r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0) for r in await _ledger(admin_conn))
    assert spent == admitted * USED <= 5 * RESERVE
    assert all(r["status"] == "settled" for r in await _ledger(admin_conn))


async def test_tenant_quota_binds_all_its_users_and_admin_can_raise_it(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    client = await gateway(**_upstreams(upstream_url), query_reservation_tokens=RESERVE, cache_enabled=False)
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    patched = await client.patch(f"/v1/admin/tenants/{tenant}", json={"monthly_token_quota": RESERVE + USED},
                                 headers=admin)
    assert patched.status_code == 200
    _, alice = await new_user(client, admin, "alice@acme.io", "member", tenant)
    _, bob = await new_user(client, admin, "bob@acme.io", "member", tenant)
    assert (await client.post("/v1/query", json={"question": "a"}, headers=alice)).status_code == 200
    assert (await client.post("/v1/query", json={"question": "b"}, headers=alice)).status_code == 200
    refused = await client.post("/v1/query", json={"question": "c"}, headers=bob)
    assert refused.status_code == 429 and refused.json()["quota"] == "tenant.month"
    usage = (await client.get("/v1/usage", headers=bob)).json()["tenant"]["month"]
    assert usage == {**usage, "used": 2 * USED, "limit": RESERVE + USED, "remaining": RESERVE - USED}
    await client.patch(f"/v1/admin/tenants/{tenant}", json={"monthly_token_quota": 10 * RESERVE}, headers=admin)
    assert (await client.post("/v1/query", json={"question": "c"}, headers=bob)).status_code == 200


async def test_a_lost_redis_counter_is_rebuilt_from_the_ledger(
    gateway: GatewayFactory, upstream_url: str, admin_conn: Any
) -> None:
    from redis.asyncio import Redis

    from .conftest import REDIS_URL

    client = await gateway(**_upstreams(upstream_url), query_reservation_tokens=RESERVE,
                           default_user_daily_tokens=RESERVE + USED, cache_enabled=False)
    auth = bearer(await login(client))
    assert (await client.post("/v1/query", json={"question": "a"}, headers=auth)).status_code == 200
    context = client._transport.app.state.gateway  # type: ignore[attr-defined]
    redis = Redis.from_url(REDIS_URL)
    try:
        quota_keys = [k async for k in redis.scan_iter(match=f"{context.settings.redis_key_prefix}:quota:*")]
        assert len(quota_keys) == 4
        await redis.delete(*quota_keys)  # Redis restarted without persistence
        assert (await client.post("/v1/query", json={"question": "b"}, headers=auth)).status_code == 200
        # Rebuilt from the ledger: 2 answers spent, so a third worst case does not fit.
        assert (await client.post("/v1/query", json={"question": "c"}, headers=auth)).status_code == 429
        values = {int(await redis.get(k) or 0) for k in quota_keys}
        assert values == {2 * USED}
    finally:
        await redis.aclose()


async def test_redis_down_quota_is_enforced_from_the_ledger(
    gateway: GatewayFactory, upstream_url: str, closed_port_url: str
) -> None:
    healthy = await gateway(**_upstreams(upstream_url))
    auth = bearer(await login(healthy))
    client = await gateway(**_upstreams(upstream_url), query_reservation_tokens=RESERVE,
                           default_user_daily_tokens=RESERVE + USED, cache_enabled=False,
                           redis_url=closed_port_url.replace("http://", "redis://"), redis_timeout_seconds=0.2)
    assert (await client.post("/v1/query", json={"question": "a"}, headers=auth)).status_code == 200
    assert (await client.post("/v1/query", json={"question": "b"}, headers=auth)).status_code == 200
    refused = await client.post("/v1/query", json={"question": "c"}, headers=auth)
    assert refused.status_code == 429 and refused.json()["type"].endswith("/quota-exceeded")


async def test_streamed_answers_are_settled_from_the_answer_event(
    gateway: GatewayFactory, upstream_url: str, admin_conn: Any
) -> None:
    client = await gateway(**_upstreams(upstream_url), query_reservation_tokens=RESERVE)
    auth = bearer(await login(client))
    async with client.stream("POST", "/v1/query", json={"question": "s", "stream": True}, headers=auth) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        text = "".join([chunk async for chunk in streamed.aiter_text()])
    assert "event: answer" in text and "X-Cache" not in streamed.headers
    for _ in range(100):
        rows = await _ledger(admin_conn)
        if rows and rows[0]["status"] == "settled":
            break
        await asyncio.sleep(0.02)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (120, 30)
