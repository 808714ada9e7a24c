"""A real gateway process's logs: one structured access line per request, and no secret anywhere."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.harness import TEST_DB

from .conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    INTERNAL_SECRET,
    JWT_SECRET,
    REDIS_PREFIX,
    drop_redis_keys,
    free_port_socket,
)


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            assert process.returncode is None, "the gateway exited"
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not start")


def free_port() -> int:
    sock = free_port_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def test_access_logs_are_structured_and_never_contain_secrets_tokens_or_passwords(
    clean_gateway: None, upstream_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VECTRION_DB_NAME": TEST_DB,
        "VECTRION_JWT_SECRET": JWT_SECRET,
        "VECTRION_INTERNAL_TOKEN_SECRET": INTERNAL_SECRET,
        "VECTRION_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "VECTRION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "VECTRION_REDIS_KEY_PREFIX": f"{REDIS_PREFIX}:logs",
        "VECTRION_LOG_JSON": "true",
        "VECTRION_CACHE_INVALIDATION_EVENTS": "false",
        "VECTRION_LOG_LEVEL": "DEBUG",
        "VECTRION_INGEST_URL": upstream_url,
        "VECTRION_QUERY_URL": upstream_url,
        "VECTRION_GUARDRAILS_URL": upstream_url,
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "vectrion_gateway.main:create_app",
            "--host", "127.0.0.1", "--port", str(port),
            stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    secrets: list[str] = [ADMIN_PASSWORD, JWT_SECRET, INTERNAL_SECRET, "wrong-password-guess", "member-password-1"]
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": "wrong-password-guess"})
            tokens = (await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL,
                                                                 "password": ADMIN_PASSWORD})).json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            refreshed = (await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
            key = (await client.post("/v1/api-keys", json={"name": "k"}, headers=auth)).json()["key"]
            created = await client.post(
                "/v1/admin/users", json={"email": "m@x.io", "password": "member-password-1", "role": "member"},
                headers=auth,
            )
            assert created.status_code == 201
            assert (await client.post("/v1/query", json={"question": "q"}, headers={"X-API-Key": key})).status_code \
                == 200
            assert (await client.get("/v1/documents", headers=auth)).status_code == 200
            await client.get("/v1/usage", headers={"Authorization": "Bearer forged.token.value"})
            await client.post("/v1/auth/logout", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
        secrets += [tokens["access_token"], tokens["refresh_token"], refreshed["access_token"],
                    refreshed["refresh_token"], key, key.rsplit("_", 1)[1], "forged.token.value"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
        await drop_redis_keys(f"{REDIS_PREFIX}:logs")
    text = log_path.read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in text, f"a secret leaked into the logs: {secret[:6]}..."
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access: list[dict[str, Any]] = [line for line in lines if line.get("event") == "http.access"]
    assert len(access) >= 9
    query_line = next(line for line in access if line["route"] == "/v1/query")
    assert query_line["status"] == 200 and query_line["user_id"] and query_line["tenant_id"]
    assert query_line["api_key_id"] and query_line["request_id"] and query_line["ms"] >= 0
    assert {line["status"] for line in access} >= {200, 201, 401, 204}
