"""Callers are remembered for seconds, and revocation still takes effect within a bound.

Through the replica that made a change: at once. Through any other replica (or
a change made in SQL): within ``principal_cache_seconds``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vectrion_gateway.principal_cache import PrincipalCache

from .conftest import GatewayFactory, bearer, login, new_tenant, new_user

TTL_SECONDS = 1.0
SLACK_SECONDS = 3.0  # a loaded 2-core machine; the bound under test is TTL_SECONDS


async def _refused_within(client: Any, path: str, headers: dict[str, str], seconds: float) -> float:
    """Poll until ``path`` answers 401; returns how long that took, fails past ``seconds``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (await client.get(path, headers=headers)).status_code != 401:
        assert loop.time() - started < seconds, f"still accepted after {seconds} s"
        await asyncio.sleep(0.05)
    return loop.time() - started


async def test_revocations_through_one_replica_reach_another_within_the_principal_cache_time(
    gateway: GatewayFactory,
) -> None:
    replica_a = await gateway(principal_cache_seconds=TTL_SECONDS)
    replica_b = await gateway(principal_cache_seconds=TTL_SECONDS)
    admin = bearer(await login(replica_a))
    tenant = await new_tenant(replica_a, admin, "acme")
    user_id, member = await new_user(replica_a, admin, "m@acme.io", "member", tenant)
    key = (await replica_a.post("/v1/api-keys", json={"name": "ci"}, headers=member)).json()
    by_key = {"X-API-Key": key["key"]}
    for replica in (replica_a, replica_b):  # both remember the caller now
        assert (await replica.get("/v1/usage", headers=member)).status_code == 200
        assert (await replica.get("/v1/usage", headers=by_key)).status_code == 200

    assert (await replica_a.delete(f"/v1/api-keys/{key['id']}", headers=member)).status_code == 204
    assert (await replica_a.get("/v1/usage", headers=by_key)).status_code == 401  # at once where it happened
    await _refused_within(replica_b, "/v1/usage", by_key, TTL_SECONDS + SLACK_SECONDS)

    off = await replica_a.patch(f"/v1/admin/users/{user_id}", json={"is_active": False}, headers=admin)
    assert off.status_code == 200
    assert (await replica_a.get("/v1/usage", headers=member)).status_code == 401
    await _refused_within(replica_b, "/v1/usage", member, TTL_SECONDS + SLACK_SECONDS)


async def test_a_user_deactivated_in_sql_is_refused_within_the_principal_cache_time(
    gateway: GatewayFactory, admin_conn: Any
) -> None:
    client = await gateway(principal_cache_seconds=TTL_SECONDS)
    token = bearer(await login(client))
    assert (await client.get("/v1/usage", headers=token)).status_code == 200  # remembered from here on
    await admin_conn.execute("UPDATE gateway.users SET is_active = false")
    await _refused_within(client, "/v1/usage", token, TTL_SECONDS + SLACK_SECONDS)


async def test_with_the_principal_cache_off_a_change_in_sql_is_refused_on_the_next_request(
    gateway: GatewayFactory, admin_conn: Any
) -> None:
    client = await gateway(principal_cache_seconds=0)
    token = bearer(await login(client))
    assert (await client.get("/v1/usage", headers=token)).status_code == 200
    await admin_conn.execute("UPDATE gateway.users SET is_active = false")
    assert (await client.get("/v1/usage", headers=token)).status_code == 401


def test_a_principal_read_before_a_revocation_is_not_remembered_after_it() -> None:
    cache: PrincipalCache[str] = PrincipalCache(ttl_seconds=60)
    generation = cache.generation  # a request starts reading the caller from the database...
    cache.clear()  # ...meanwhile a revocation commits and clears the cache...
    cache.put("caller", "stale principal", generation)  # ...then the request finishes its read
    assert cache.get("caller") is None
    cache.put("caller", "fresh principal", cache.generation)
    assert cache.get("caller") == "fresh principal"


def test_the_principal_cache_holds_a_bounded_number_of_callers() -> None:
    cache: PrincipalCache[int] = PrincipalCache(ttl_seconds=60, max_entries=3)
    for n in range(5):
        cache.put(n, n, cache.generation)
    assert len(cache) == 3 and cache.get(0) is None and cache.get(4) == 4
