"""Gateway overhead benchmark: `python -m bench.gateway` (also `task bench:gateway`).

In one run, on 127.0.0.1: a minimal upstream (uvicorn, its own process) and
the gateway (uvicorn, its own process, real PostgreSQL, Redis and RabbitMQ) in
front of it. For 1 and 32 concurrent clients it times the cheap route
`GET /v1/documents` hit directly on the upstream and through the gateway
(bearer token: JWT check, the caller's session/user/tenant as the gateway
knows them, at most `principal_cache_seconds` old, signed identity, proxying),
in alternating rounds so drift hits both alike. Then the p50 of a cache-hit
`POST /v1/query` (rate limit + cache lookup in Redis). Prints JSON, with the
load average before and after, and saves it under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.saving import save_result
from tests.harness import REPO_ROOT, delete_broker_namespace, drop_database, migrate_services

ADMIN = ("bench@example.com", "bench-password-0123456789")


async def _documents(_: Request) -> JSONResponse:
    return JSONResponse({"items": [], "limit": 100, "offset": 0})


async def _query(_: Request) -> JSONResponse:
    return JSONResponse({"answer": "a", "citations": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}})


upstream_app = Starlette(routes=[Route("/v1/documents", _documents), Route("/v1/query", _query, methods=["POST"])])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _uvicorn(target: str, port: int, env: dict[str, str], factory: bool = False) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        *(["--factory"] if factory else []),
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(url)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(
    url: str, headers: dict[str, str], clients: int, per_client: int, method: str = "GET", body: Any = None
) -> list[float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for _ in range(per_client):
                started = time.perf_counter()
                response = await client.request(method, url, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(ms), 3), "p99_ms": round(percentile(ms, 0.99), 3), "n": len(ms)}


async def measure(upstream: str, gateway: str, token: str, requests: int, rounds: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    results: dict[str, Any] = {}
    for clients in (1, 32):
        per_client = max(1, requests // clients // rounds)
        await _timed(f"{upstream}/v1/documents", {}, clients, 5)  # warm connections
        await _timed(f"{gateway}/v1/documents", auth, clients, 5)
        direct: list[float] = []
        through: list[float] = []
        for _ in range(rounds):
            direct += await _timed(f"{upstream}/v1/documents", {}, clients, per_client)
            through += await _timed(f"{gateway}/v1/documents", auth, clients, per_client)
        d, g = _summary(direct), _summary(through)
        results[f"clients_{clients}"] = {
            "direct": d,
            "gateway": g,
            "added_p50_ms": round(g["p50_ms"] - d["p50_ms"], 3),
            "added_p99_ms": round(g["p99_ms"] - d["p99_ms"], 3),
        }
    question = {"question": "what is the cached benchmark question?"}
    await _timed(f"{gateway}/v1/query", auth, 1, 1, "POST", question)  # the miss that fills the cache
    hits = await _timed(f"{gateway}/v1/query", auth, 1, 200, "POST", question)
    results["cache_hit"] = _summary(hits)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per side and concurrency level")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    db = f"vectrion_bench_{uuid.uuid4().hex[:8]}"
    namespace = f"vbench{uuid.uuid4().hex[:8]}"  # the gateway consumes document events, as in production
    load_before = os.getloadavg()
    migrate_services("gateway", db=db)
    up_port, gw_port = _free_port(), _free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    gateway = f"http://127.0.0.1:{gw_port}"
    env = {
        **os.environ,
        "VECTRION_DB_NAME": db,
        "VECTRION_JWT_SECRET": uuid.uuid4().hex * 2,
        "VECTRION_INTERNAL_TOKEN_SECRET": uuid.uuid4().hex * 2,
        "VECTRION_BOOTSTRAP_ADMIN_EMAIL": ADMIN[0],
        "VECTRION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "VECTRION_REDIS_KEY_PREFIX": f"vbench:{db}",
        "VECTRION_RATE_LIMIT_QUERY_BURST": "1000000",
        "VECTRION_LOG_LEVEL": "WARNING",
        "VECTRION_CACHE_SETTLE_SECONDS": "0",
        "VECTRION_INGEST_URL": upstream,
        "VECTRION_QUERY_URL": upstream,
        "VECTRION_GUARDRAILS_URL": upstream,
        "VECTRION_BROKER_NAMESPACE": namespace,
    }
    processes = [_uvicorn("bench.gateway:upstream_app", up_port, env)]
    try:
        _wait(f"{upstream}/v1/documents", processes[0])
        processes.append(_uvicorn("vectrion_gateway.main:create_app", gw_port, env, factory=True))
        _wait(f"{gateway}/healthz", processes[1])
        token = httpx.post(f"{gateway}/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]}).json()[
            "access_token"
        ]
        measured = asyncio.run(measure(upstream, gateway, token, args.requests, args.rounds))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        drop_database(db)
        delete_broker_namespace(namespace)
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        stale = list(redis.scan_iter(match=f"vbench:{db}:*", count=1000))
        if stale:
            redis.delete(*stale)
        redis.close()
    result = {
        "benchmark": "gateway_overhead",
        "at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Other work on the machine inflates every latency: read the numbers with these.
            "loadavg_1m_before": load_before[0],
            "loadavg_1m_after": os.getloadavg()[0],
        },
        "route": "GET /v1/documents (upstream answers a constant small JSON)",
        "targets": {"added_p50_ms": 2.0, "cache_hit_p50_ms": 5.0},
        "results": measured,
    }
    save_result("gateway", result)


if __name__ == "__main__":
    main()
