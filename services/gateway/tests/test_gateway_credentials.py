"""API keys, refresh tokens and logout, key rotation, login throttling."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, GatewayFactory, bearer, login, new_tenant, new_user


async def _token_pair(client: Any, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> dict[str, Any]:
    response = await client.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_api_key_is_shown_once_stored_hashed_and_works_as_x_api_key(
    gateway: GatewayFactory, admin_conn: Any
) -> None:
    client = await gateway()
    admin = bearer(await login(client))
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith(f"vk_{created.json()['prefix']}_")
    listed = (await client.get("/v1/api-keys", headers=admin)).json()["items"]
    assert [k["id"] for k in listed] == [created.json()["id"]] and "key" not in listed[0]
    stored = await admin_conn.fetchrow("SELECT * FROM gateway.api_keys")
    assert key not in {str(v) for v in stored.values()}
    assert (await client.get("/v1/admin/users", headers={"X-API-Key": key})).status_code == 200
    # A key cannot manage keys, even when its owner can.
    assert (await client.get("/v1/api-keys", headers={"X-API-Key": key})).status_code == 403


async def test_forged_malformed_and_revoked_api_keys_are_401(gateway: GatewayFactory) -> None:
    client = await gateway()
    admin = bearer(await login(client))
    created = (await client.post("/v1/api-keys", json={"name": "ci"}, headers=admin)).json()
    key = created["key"]
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")  # right prefix, wrong secret
    for name, candidate in [
        ("forged", forged), ("malformed", "not-a-key"), ("unknown-prefix", "vk_000000000000_abc"), ("empty", ""),
    ]:
        response = await client.get("/v1/usage", headers={"X-API-Key": candidate})
        assert response.status_code == 401, name
    assert (await client.get("/v1/usage", headers={"X-API-Key": key})).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{created['id']}", headers=admin)
    assert revoked.status_code == 204
    assert (await client.get("/v1/usage", headers={"X-API-Key": key})).status_code == 401


async def test_api_key_scopes_limit_what_the_key_can_do_within_its_owners_role(gateway: GatewayFactory) -> None:
    client = await gateway()
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    _, member = await new_user(client, admin, "m@acme.io", "member", tenant)
    narrow = await client.post("/v1/api-keys", json={"name": "ro", "scopes": ["usage:read"]}, headers=member)
    assert narrow.status_code == 201
    key = {"X-API-Key": narrow.json()["key"]}
    assert (await client.get("/v1/usage", headers=key)).status_code == 200
    assert (await client.post("/v1/search", json={"query": "q"}, headers=key)).status_code == 403
    # A member cannot mint a key with more than they hold, nor a key-managing key.
    assert (await client.post("/v1/api-keys", json={"name": "x", "scopes": ["tenants:manage"]},
                              headers=member)).status_code == 403
    assert (await client.post("/v1/api-keys", json={"name": "x", "scopes": ["api_keys:manage"]},
                              headers=member)).status_code == 422


async def test_another_users_api_key_answers_404_on_delete(gateway: GatewayFactory) -> None:
    client = await gateway()
    admin = bearer(await login(client))
    acme = await new_tenant(client, admin, "acme")
    _, alice = await new_user(client, admin, "alice@acme.io", "admin", acme)
    _, bob = await new_user(client, admin, "bob@acme.io", "member", acme)
    alice_key = (await client.post("/v1/api-keys", json={"name": "a"}, headers=alice)).json()
    for intruder in (bob, admin):  # same tenant, and even the platform admin: keys belong to their user
        response = await client.delete(f"/v1/api-keys/{alice_key['id']}", headers=intruder)
        assert response.status_code == 404
    assert (await client.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=alice)).status_code == 404
    assert (await client.get("/v1/usage", headers={"X-API-Key": alice_key["key"]})).status_code == 200
    assert (await client.get("/v1/api-keys", headers=bob)).json()["items"] == []


async def test_refresh_token_rotates_and_works_once(gateway: GatewayFactory) -> None:
    client = await gateway()
    first = await _token_pair(client)
    second = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/usage", headers=bearer(second.json()["access_token"]))).status_code == 200
    replayed = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replayed.status_code == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": "made-up"})).status_code == 401


async def test_logout_revokes_the_sessions_access_and_refresh_tokens_but_not_other_sessions(
    gateway: GatewayFactory,
) -> None:
    client = await gateway()
    session_a, session_b = await _token_pair(client), await _token_pair(client)
    assert (await client.post("/v1/auth/logout", headers=bearer(session_a["access_token"]))).status_code == 204
    assert (await client.get("/v1/usage", headers=bearer(session_a["access_token"]))).status_code == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": session_a["refresh_token"]})).status_code \
        == 401
    assert (await client.get("/v1/usage", headers=bearer(session_b["access_token"]))).status_code == 200


async def test_key_rotation_keeps_tokens_of_the_retired_key_valid_until_it_is_dropped(
    gateway: GatewayFactory,
) -> None:
    old = await gateway()
    old_token = await login(old)
    assert jwt.get_unverified_header(old_token)["kid"] == "k1"
    new_secret = "gateway-test-rotated-jwt-secret-0123456789"
    rotated = await gateway(jwt_secret=new_secret, jwt_key_id="k2", jwt_retired_keys={"k1": JWT_SECRET})
    new_token = await login(rotated)
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    for token in (old_token, new_token):
        assert (await rotated.get("/v1/usage", headers=bearer(token))).status_code == 200
    dropped = await gateway(jwt_secret=new_secret, jwt_key_id="k2")
    assert (await dropped.get("/v1/usage", headers=bearer(old_token))).status_code == 401
    assert (await dropped.get("/v1/usage", headers=bearer(new_token))).status_code == 200


async def test_login_is_throttled_after_repeated_failures_even_with_the_right_password(
    gateway: GatewayFactory,
) -> None:
    client = await gateway(login_max_failures_per_email=3)
    for _ in range(3):
        wrong = await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": "guess"})
        assert wrong.status_code == 401
    blocked = await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["type"].endswith("/login-throttled")
    assert 0 < int(blocked.headers["retry-after"]) <= 900
    # Other accounts are not locked out by someone guessing this one.
    other = await client.post("/v1/auth/token", json={"email": "nobody@x.io", "password": "guess"})
    assert other.status_code == 401
