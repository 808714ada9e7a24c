"""Bootstrap, login and access-token verification against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from vectrion_common.db import make_engine, make_sessionmaker
from vectrion_common.settings import SettingsError
from vectrion_gateway.bootstrap import bootstrap_admin
from vectrion_gateway.main import create_app
from vectrion_gateway.tokens import AUDIENCE, ISSUER

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, GatewayFactory, login, make_settings


async def test_bootstrap_creates_exactly_one_admin_under_concurrent_and_repeated_starts(
    clean_gateway: None, admin_conn: Any
) -> None:
    settings = make_settings()
    # Separate engines = separate connections, as two gateway processes would have.
    engines = [make_engine(settings.db_url(), "gateway") for _ in range(3)]
    try:
        created = await asyncio.gather(*(bootstrap_admin(make_sessionmaker(e), settings) for e in engines))
        again = await bootstrap_admin(make_sessionmaker(engines[0]), settings)
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(created) == [False, False, True]
    assert again is False
    admins = await admin_conn.fetch("SELECT email, role FROM gateway.users")
    assert [(r["email"], r["role"]) for r in admins] == [(ADMIN_EMAIL, "platform_admin")]
    assert await admin_conn.fetchval("SELECT count(*) FROM gateway.tenants WHERE name = 'default'") == 1


async def test_bootstrap_does_nothing_without_configured_credentials(clean_gateway: None, admin_conn: Any) -> None:
    settings = make_settings(bootstrap_admin_email=None, bootstrap_admin_password=None)
    engine = make_engine(settings.db_url(), "gateway")
    try:
        assert await bootstrap_admin(make_sessionmaker(engine), settings) is False
    finally:
        await engine.dispose()
    assert await admin_conn.fetchval("SELECT count(*) FROM gateway.users") == 0


async def test_bootstrap_stores_an_argon2_hash_not_the_password(gateway: GatewayFactory, admin_conn: Any) -> None:
    await gateway()
    stored = await admin_conn.fetchval("SELECT password_hash FROM gateway.users")
    assert stored.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in stored


def test_missing_jwt_secret_stops_start_up_with_a_clear_message() -> None:
    with pytest.raises(SettingsError, match="VECTRION_JWT_SECRET"):
        create_app(make_settings(jwt_secret=None))


async def test_login_returns_a_bearer_token_that_opens_protected_routes(gateway: GatewayFactory) -> None:
    client = await gateway()
    response = await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == make_settings().access_token_ttl_seconds
    assert jwt.get_unverified_header(body["access_token"])["kid"] == make_settings().jwt_key_id
    listed = await client.get("/v1/admin/tenants", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()["items"]] == ["default"]


async def test_wrong_password_and_unknown_email_get_the_same_401(gateway: GatewayFactory) -> None:
    client = await gateway()
    wrong = await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": "not it"})
    unknown = await client.post("/v1/auth/token", json={"email": "nobody@example.com", "password": "not it"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json() == unknown.json()
    assert wrong.json()["type"].endswith("/invalid-credentials")


async def test_an_email_with_a_nul_byte_is_a_422_not_a_500(gateway: GatewayFactory) -> None:
    client = await gateway()
    response = await client.post("/v1/auth/token", json={"email": "a\u0000@example.com", "password": "x"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_protected_route_without_token_is_401_problem(gateway: GatewayFactory) -> None:
    client = await gateway()
    for method, path in [("GET", "/v1/admin/users"), ("GET", "/v1/documents"), ("POST", "/v1/search")]:
        response = await client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def _claims(sub: uuid.UUID, tid: uuid.UUID, sid: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(sub), "tid": str(tid), "sid": sid, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
        **overrides,
    }


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_expired_and_unsigned_tokens_are_refused(gateway: GatewayFactory, admin_conn: Any) -> None:
    client = await gateway()
    good = await login(client)
    row = await admin_conn.fetchrow("SELECT id, tenant_id FROM gateway.users")
    user_id, tenant_id = row["id"], row["tenant_id"]
    sid = jwt.decode(good, options={"verify_signature": False})["sid"]  # a live session: only the flaw differs
    kid = {"kid": make_settings().jwt_key_id}
    hand_made = jwt.encode(_claims(user_id, tenant_id, sid), JWT_SECRET, "HS256", headers=kid)
    forged = jwt.encode(_claims(user_id, tenant_id, sid), "some-other-secret-0123456789abcdef", "HS256", headers=kid)
    expired = jwt.encode(
        _claims(user_id, tenant_id, sid, iat=int(time.time()) - 100, exp=int(time.time()) - 10), JWT_SECRET,
        "HS256", headers=kid,
    )
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', **kid})}.{_b64(_claims(user_id, tenant_id, sid))}."
    wrong_kid = jwt.encode(_claims(user_id, tenant_id, sid), JWT_SECRET, "HS256", headers={"kid": "k-unknown"})
    # Right secret and kid, but HS512: the algorithm is pinned, not taken from the header.
    other_alg = jwt.encode(_claims(user_id, tenant_id, sid), JWT_SECRET + JWT_SECRET, "HS512", headers=kid)
    no_session = jwt.encode(_claims(user_id, tenant_id, uuid.uuid4().hex), JWT_SECRET, "HS256", headers=kid)
    for valid in (good, hand_made):  # the controls: the claims above are otherwise acceptable
        assert (await client.get("/v1/admin/users", headers={"Authorization": f"Bearer {valid}"})).status_code == 200
    for name, token in [
        ("forged", forged), ("expired", expired), ("alg-none", unsigned), ("wrong-kid", wrong_kid),
        ("hs512", other_alg), ("garbage", "not.a.jwt"), ("unknown-session", no_session),
    ]:
        response = await client.get("/v1/admin/users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["type"].endswith("/unauthorized"), name


async def test_deactivated_user_is_refused_even_with_a_valid_token(gateway: GatewayFactory, admin_conn: Any) -> None:
    client = await gateway()
    token = await login(client)
    await admin_conn.execute("UPDATE gateway.users SET is_active = false")
    response = await client.get("/v1/admin/tenants", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    relogin = await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert relogin.status_code == 401


async def test_email_is_stored_lowercase_and_unique_case_insensitively(
    clean_gateway: None, admin_conn: Any
) -> None:
    tenant_id = await admin_conn.fetchval("INSERT INTO gateway.tenants (name) VALUES ('t') RETURNING id")
    with pytest.raises(Exception, match="ck_users_email_lowercase"):
        await admin_conn.execute(
            "INSERT INTO gateway.users (tenant_id, email, password_hash, role) VALUES ($1, 'A@x.io', 'h', 'member')",
            tenant_id,
        )
