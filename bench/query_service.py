"""The query service as its own process: RSS with SciFact indexed, growth per 10k chunks, HTTP latency.

Run: ``python -m bench.query_service [--copies 3] [--latency-requests 100]`` (prints JSON,
saves bench/results/query-service-<timestamp>.json). Needs PostgreSQL and RabbitMQ as
the test suite does; uses the test DB (``VECTRION_TEST_DB``), fresh tenants (removed
afterwards) and its own broker namespace.

Measured path: ``uvicorn --factory vectrion_query.main:create_app`` in a child process
(embedded Qdrant under a temp dir), nothing else in it. This bench process publishes
one ``chunks.embedded.v1`` per SciFact document (title + abstract, one chunk) on the
real broker; the service indexes them through its own consumer (Qdrant upsert, read
model, progress, outbox). Vectors: the all-MiniLM-L6-v2 vectors cached by
``bench.query_quality`` when present, else seeded random unit vectors (RSS does not
depend on the values; the JSON says which). Copy k of the corpus goes to tenant k, so
copies 1..N give the RSS at 1x..Nx SciFact. After each copy every tenant searches
(``/v1/search`` on document titles: builds its BM25 index, fills the query-vector
cache, default size), then the child's
VmRSS is read from /proc. Then the service is restarted on a copy of the Qdrant
directory taken after each copy and sampled again (state loaded from disk, no
indexing churn; the read model holds every copy, only the first k tenants search).

The embedder RPC is served here by the embedder service's own app (same model
process-wide) and the guardrails RPC by the real guardrails policy, so ``/v1/search``
and ``/v1/query`` over real HTTP are timed at 1 and 16 users against the first copy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.query_quality import CACHE, load, load_average, load_scifact, summary
from bench.saving import save_result
from tests.e2e.stack import free_port
from tests.harness import RABBITMQ_URL, REPO_ROOT, TEST_DB, delete_broker_namespace, migrate_services

SECRET = "bench-secret-0123456789abcdef0123456789"


def proc_status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise KeyError(field)


@contextmanager
def query_service(db: str, namespace: str, qdrant_dir: Path, log_path: Path) -> Iterator[tuple[int, str]]:
    """The real query app in its own process; yields (pid, base url) once /readyz answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "VECTRION_DB_NAME": db,
        "VECTRION_BROKER_NAMESPACE": namespace,
        "VECTRION_RABBITMQ_URL": RABBITMQ_URL,
        "VECTRION_INTERNAL_TOKEN_SECRET": SECRET,
        "VECTRION_QDRANT_PATH": str(qdrant_dir),
        "VECTRION_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "vectrion_query.main:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"query service exited: see {log_path}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("query service not ready")
            time.sleep(0.5)
        yield process.pid, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def corpus_vectors(count: int) -> tuple[np.ndarray[Any, Any], str]:
    cache = CACHE / f"scifact-minilm-{count}.npy"
    if cache.exists():
        return np.load(cache), "all-MiniLM-L6-v2 vectors cached by bench.query_quality"
    rng = np.random.default_rng(20261128)
    vectors = rng.normal(size=(count, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), "seeded random unit vectors (no cache)"


async def run(args: argparse.Namespace, qdrant_dir: Path, log_path: Path) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sqlalchemy as sa
    from faststream.rabbit import RabbitBroker

    from vectrion_common.contracts import ChunksEmbeddedV1, DocumentMeta, EmbeddedChunk
    from vectrion_common.db import make_engine, make_sessionmaker
    from vectrion_common.identity import IDENTITY_HEADER, Identity, sign_identity
    from vectrion_common.ids import chunk_id
    from vectrion_common.logs import configure_logging
    from vectrion_common.messaging.broker import publish_event
    from vectrion_common.messaging.topology import Topology
    from vectrion_embedder.main import create_app as create_embedder_app
    from vectrion_embedder.model import make_embedder
    from vectrion_embedder.settings import EmbedderSettings
    from vectrion_guardrails.handlers import register_handlers as register_guardrails
    from vectrion_guardrails.policy import build_policy
    from vectrion_query.models import chunks, conversations, document_progress, inbox, outbox
    from vectrion_query.settings import QuerySettings

    configure_logging("bench", "WARNING", True)
    corpus, queries, _ = load_scifact()
    corpus = corpus[: args.documents]
    texts = [f"{d['title']}. {d['text']}".strip() for d in corpus]
    vectors, vector_source = corpus_vectors(len(texts))
    query_texts = list(queries.values())  # the latency phases: disjoint slices, no query-vector cache hits
    warm_texts = [d["title"] for d in corpus]
    tenants = [(uuid.uuid4(), uuid.uuid4()) for _ in range(args.copies)]
    namespace, db = args.namespace, args.db
    topology = Topology(namespace)
    result: dict[str, Any] = {
        "corpus": {"documents_per_copy": len(texts), "chunks_per_copy": len(texts), "vectors": vector_source},
        "rss_mb": {},
    }
    settings = QuerySettings(db_name=db, broker_namespace=namespace, rabbitmq_url=RABBITMQ_URL)
    engine = make_engine(settings.db_url(), settings.db_schema, 2)
    sessions = make_sessionmaker(engine)
    embedder_settings = EmbedderSettings(broker_namespace=namespace, rabbitmq_url=RABBITMQ_URL, log_level="WARNING")
    embedder_app = create_embedder_app(
        embedder_settings, embedder=await asyncio.to_thread(make_embedder, embedder_settings)
    )
    peers = RabbitBroker(RABBITMQ_URL, logger=None)
    register_guardrails(peers, topology, build_policy())
    event_ids: list[uuid.UUID] = []

    def headers(tenant: uuid.UUID, user: uuid.UUID) -> dict[str, str]:
        return {IDENTITY_HEADER: sign_identity(Identity(user, tenant, "member"), SECRET, 3600)}

    async def indexed(tenant: uuid.UUID) -> int:
        async with sessions() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(chunks).where(chunks.c.tenant_id == tenant)
            )
            return int(count or 0)

    async def index_copy(tenant: uuid.UUID, user: uuid.UUID) -> float:
        started = time.perf_counter()
        events = []
        for doc, text, vector in zip(corpus, texts, vectors, strict=True):
            document_id = uuid.uuid5(uuid.NAMESPACE_URL, f"scifact:{tenant}:{doc['_id']}")
            events.append(
                ChunksEmbeddedV1(
                    tenant_id=tenant,
                    document_id=document_id,
                    generation=1,
                    batch_index=0,
                    batch_count=1,
                    total_chunks=1,
                    document=DocumentMeta(owner_id=user, filename=f"{doc['_id']}.txt", visibility="tenant"),
                    model_id="all-MiniLM-L6-v2",
                    dimension=384,
                    chunks=[
                        EmbeddedChunk(
                            chunk_id=chunk_id(document_id, 1, 0),
                            chunk_index=0,
                            text=text,
                            page_start=1,
                            page_end=1,
                            vector=vector.tolist(),
                        )
                    ],
                )
            )
        event_ids.extend(e.event_id for e in events)
        for i in range(0, len(events), 200):
            await asyncio.gather(*(publish_event(peers, topology, e) for e in events[i : i + 200]))
        for _ in range(1800):  # the service's consumer indexes them: poll the read model
            if await indexed(tenant) >= len(events):
                break
            await asyncio.sleep(1)
        else:
            raise TimeoutError(f"tenant {tenant} not indexed after 30 min")
        return round(time.perf_counter() - started, 1)

    async def searches(url: str, n: int, copies: int) -> None:
        """Each of the first ``copies`` tenants searches ``n`` document titles: BM25 built, cache filled."""
        for tenant, user in tenants[:copies]:
            async with httpx.AsyncClient(base_url=url, headers=headers(tenant, user), timeout=120) as client:
                for q in warm_texts[:n]:
                    (await client.post("/v1/search", json={"query": q, "top_k": 10})).raise_for_status()

    async def latency(url: str) -> dict[str, Any]:
        tenant, user = tenants[0]
        out: dict[str, Any] = {"load_average_before": load_average()}
        phase = 0
        size = args.latency_requests
        async with httpx.AsyncClient(base_url=url, headers=headers(tenant, user), timeout=120) as client:
            for path, body_of in (
                ("/v1/search", lambda q: {"query": q, "top_k": 10}),
                ("/v1/query", lambda q: {"question": q}),
            ):
                for users in (1, 16):
                    timings: list[float] = []
                    failures: list[int] = []
                    texts = query_texts[phase * size : (phase + 1) * size]
                    phase += 1
                    pending = iter(range(len(texts)))
                    await asyncio.gather(
                        *(load(client, path, body_of, texts, pending, timings, failures) for _ in range(users))
                    )
                    out[f"{path} users={users}"] = summary(timings) | {"failed": len(failures)}
        out["load_average_after"] = load_average()
        return out

    snapshots = qdrant_dir.parent / "snapshots"
    try:
        async with embedder_app.router.lifespan_context(embedder_app):
            await peers.start()
            with query_service(db, namespace, qdrant_dir, log_path) as (pid, url):
                result["rss_mb"]["started_empty"] = proc_status_mb(pid, "VmRSS")
                index_seconds = []
                for copy, (tenant, user) in enumerate(tenants, start=1):
                    index_seconds.append(await index_copy(tenant, user))
                    result["rss_mb"][f"after_indexing_copy_{copy}"] = proc_status_mb(pid, "VmRSS")
                    await searches(url, args.warm_queries, copy)
                    result["rss_mb"][f"copy_{copy}_searched"] = proc_status_mb(pid, "VmRSS")
                    # A snapshot of the store at k copies: restarted from below (local mode has no snapshot API).
                    shutil.copytree(qdrant_dir, snapshots / str(copy), ignore=shutil.ignore_patterns(".lock"))
                    if copy == 1 and args.latency_requests:
                        result["latency_real_http"] = await latency(url)
                        result["rss_mb"]["copy_1_after_latency"] = proc_status_mb(pid, "VmRSS")
                result["corpus"]["index_seconds_per_copy"] = index_seconds
                result["rss_mb"]["peak_vmhwm"] = proc_status_mb(pid, "VmHWM")
            for copy in range(1, args.copies + 1):
                with query_service(db, namespace, snapshots / str(copy), log_path) as (pid, url):
                    result["rss_mb"][f"restarted_{copy}_copies"] = proc_status_mb(pid, "VmRSS")
                    await searches(url, args.warm_queries, copy)
                    result["rss_mb"][f"restarted_{copy}_copies_searched"] = proc_status_mb(pid, "VmRSS")
            await peers.stop()
    finally:
        async with sessions() as session, session.begin():
            ids = [t for t, _ in tenants]
            await session.execute(sa.delete(chunks).where(chunks.c.tenant_id.in_(ids)))
            await session.execute(sa.delete(document_progress).where(document_progress.c.tenant_id.in_(ids)))
            await session.execute(sa.delete(conversations).where(conversations.c.tenant_id.in_(ids)))
            await session.execute(sa.delete(inbox).where(inbox.c.message_id.in_(event_ids)))
            await session.execute(sa.delete(outbox))  # document.indexed.v1 rows staged for the bench tenants
        await engine.dispose()

    rss = result["rss_mb"]
    n = len(texts)
    if args.copies >= 2:
        last = rss[f"copy_{args.copies}_searched"]
        restarted = rss[f"restarted_{args.copies}_copies_searched"]
        result["growth_mb_per_10k_chunks"] = {
            "while_running": round((last - rss["copy_1_searched"]) / ((args.copies - 1) * n) * 10_000, 1),
            "after_restart": round(
                (restarted - rss["restarted_1_copies_searched"]) / ((args.copies - 1) * n) * 10_000, 1
            ),
        }
    result["target"] = "query service RSS < 500 MB at SciFact size (copy_1_searched, restarted_1_copies_searched)"
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=3, help="SciFact copies, one tenant each")
    parser.add_argument("--documents", type=int, default=None, help="first N documents only (smoke runs)")
    parser.add_argument("--warm-queries", type=int, default=100, help="title searches per tenant before sampling")
    parser.add_argument(
        "--latency-requests", type=int, default=75, help="per phase, 4 phases of distinct test queries; 0 skips"
    )
    args = parser.parse_args()
    args.db = migrate_services("query", db=TEST_DB)
    args.namespace = f"qsvc{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="vectrion-bench-query-") as tmp:
        log_path = Path(tmp) / "query.log"
        try:
            result = asyncio.run(run(args, Path(tmp) / "qdrant", log_path))
        except BaseException:
            print(log_path.read_text()[-4000:] if log_path.exists() else "", file=sys.stderr)
            raise
        finally:
            delete_broker_namespace(args.namespace)
    result["load_average_1_5_15"] = {"start": load_before, "end": load_average()}
    result["machine"] = {"cpus": os.cpu_count()}
    result["runtime_seconds"] = round(time.perf_counter() - started, 1)
    result["when"] = datetime.now(UTC).isoformat()
    save_result("query-service", result)


if __name__ == "__main__":
    main()
