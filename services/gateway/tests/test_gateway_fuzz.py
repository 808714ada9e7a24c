"""schemathesis against the gateway's own OpenAPI document: no input makes it answer 5xx.

A real gateway process (uvicorn) in front of a loopback upstream that answers
every route, so a 5xx can only come from the gateway. Bounded: a few examples
per operation.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.harness import TEST_DB

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, INTERNAL_SECRET, JWT_SECRET, REDIS_PREFIX, drop_redis_keys
from .test_gateway_logs import free_port, wait_ready

MAX_EXAMPLES = 6


def _fuzz(url: str, token: str) -> list[str]:
    """Every failure as 'METHOD path -> status' (run in a thread: hypothesis is synchronous)."""
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    failures: list[str] = []
    statuses: list[int] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            if isinstance(case.body, dict) and case.body.get("stream"):
                # schemathesis reads an SSE answer with urllib3 2's read1(); we pin urllib3 1.26.
                # Streamed answers have their own tests (test_gateway_proxy, test_gateway_cache).
                case.body["stream"] = False
            response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:200]}")

        check()
    assert operations >= 30
    assert len(statuses) >= 2 * operations and any(s < 300 for s in statuses), "the fuzzer barely ran"
    return failures


async def test_schemathesis_finds_no_5xx(clean_gateway: None, fast_upstream_url: str, tmp_path: Path) -> None:
    port = free_port()
    prefix = f"{REDIS_PREFIX}:fuzz"
    env = {
        **os.environ,
        "VECTRION_DB_NAME": TEST_DB,
        "VECTRION_JWT_SECRET": JWT_SECRET,
        "VECTRION_INTERNAL_TOKEN_SECRET": INTERNAL_SECRET,
        "VECTRION_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "VECTRION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "VECTRION_REDIS_KEY_PREFIX": prefix,
        "VECTRION_RATE_LIMIT_QUERY_BURST": "100000",
        "VECTRION_RATE_LIMIT_UPLOAD_BURST": "100000",
        "VECTRION_INGEST_URL": fast_upstream_url,
        "VECTRION_QUERY_URL": fast_upstream_url,
        "VECTRION_GUARDRAILS_URL": fast_upstream_url,
        "VECTRION_CACHE_INVALIDATION_EVENTS": "false",  # no queues on the shared RabbitMQ for this
    }
    with (tmp_path / "gateway.log").open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "vectrion_gateway.main:create_app",
            "--host", "127.0.0.1", "--port", str(port),
            stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(base_url=url) as client:
            login = await client.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        failures = await asyncio.to_thread(_fuzz, url, login.json()["access_token"])
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
        await drop_redis_keys(prefix)
    assert failures == [], "\n".join(failures[:20])
