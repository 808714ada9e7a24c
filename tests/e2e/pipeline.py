"""The ingestion pipeline (ingest, chunker, embedder, query, guardrails) as separate uvicorn processes that a
test can kill -9 and restart one by one; its own database, broker namespace and var directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tests.e2e.stack import free_port
from tests.harness import ADMIN_URL, RABBITMQ_URL, REPO_ROOT, delete_broker_namespace, drop_database, migrate_services
from vectrion_common.identity import IDENTITY_HEADER, Identity, sign_identity

# guardrails too: the chunker scans every chunk through it and fails closed without it.
PIPELINE = ("ingest", "chunker", "embedder", "query", "guardrails")
SECRET = "pipeline-test-internal-secret-0123456789"
SETTLED = ("indexed", "failed")


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(REPO_ROOT / ".venv/bin/uvicorn"),
                    "--factory",
                    f"vectrion_{self.name}.main:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-access-log",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill9()

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def events(self, name: str) -> list[dict[str, Any]]:
        """This service's JSON log records with ``event == name``, oldest first."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"{name}"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
        return found


@dataclass
class Pipeline:
    var_dir: Path
    namespace: str
    db_name: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.services['ingest'].port}"

    def headers(self, identity: Identity) -> dict[str, str]:
        return {IDENTITY_HEADER: sign_identity(identity, SECRET)}

    def upload(self, identity: Identity, path: Path, data: bytes | None = None) -> httpx.Response:
        content = path.read_bytes() if data is None else data
        return httpx.post(
            f"{self.ingest_url}/v1/documents",
            files={"file": (path.name, content, "application/pdf")},
            headers=self.headers(identity),
            timeout=60,
        )

    def document(self, identity: Identity, document_id: str) -> dict[str, Any]:
        url = f"{self.ingest_url}/v1/documents/{document_id}"
        response = httpx.get(url, headers=self.headers(identity), timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_settled(
        self, identity: Identity, document_ids: Iterable[str], timeout: float = 120, until: tuple[str, ...] = SETTLED
    ) -> dict[str, dict[str, Any]]:
        pending = set(document_ids)
        settled: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for document_id in sorted(pending):
                try:
                    document = self.document(identity, document_id)
                except httpx.HTTPError:
                    continue  # ingest restarting
                if document["status"] in until:
                    settled[document_id] = document
                    pending.discard(document_id)
            time.sleep(0.25)
        if pending:
            tails = "\n".join(f"--- {s.name}\n{s.log_tail(20)}" for s in self.services.values())
            raise AssertionError(f"not settled after {timeout}s: {sorted(pending)}\n{tails}")
        return settled

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


def new_identity(role: str = "member") -> Identity:
    return Identity(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role=role)


def start_pipeline(
    var_dir: Path, namespace: str, *, rabbitmq_url: str = RABBITMQ_URL, extra_env: dict[str, str] | None = None
) -> Pipeline:
    """The four pipeline services, ready; stop with :func:`stop_pipeline`."""
    db_name = f"vectrion_{namespace}"
    migrate_services("ingest", "chunker", "query", db=db_name)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "UNSTRUCTURED_DISABLE_NOTICE": "1",
        "SCARF_NO_ANALYTICS": "true",
        "TOKENIZERS_PARALLELISM": "false",
        "VECTRION_DB_NAME": db_name,
        "VECTRION_RABBITMQ_URL": rabbitmq_url,
        "VECTRION_BROKER_NAMESPACE": namespace,
        "VECTRION_INTERNAL_TOKEN_SECRET": SECRET,
        "VECTRION_STORAGE__BACKEND": "local",
        "VECTRION_STORAGE__LOCAL_ROOT": str(var_dir / "blobs"),
        "VECTRION_QDRANT_PATH": str(var_dir / "qdrant"),
        "VECTRION_LOG_JSON": "true",
        **(extra_env or {}),
    }
    ports = {name: free_port() for name in PIPELINE}
    # The reconciler in ingest asks chunker and query what they hold.
    env["VECTRION_CHUNKER_URL"] = f"http://127.0.0.1:{ports['chunker']}"
    env["VECTRION_QUERY_URL"] = f"http://127.0.0.1:{ports['query']}"
    pipeline = Pipeline(var_dir, namespace, db_name)
    for name in PIPELINE:
        pipeline.services[name] = ServiceProcess(name, ports[name], env, var_dir / f"{name}.log")
    try:
        for service in pipeline.services.values():
            service.start()
        for service in pipeline.services.values():
            service.wait_ready()
    except BaseException:
        stop_pipeline(pipeline)
        raise
    return pipeline


def stop_pipeline(pipeline: Pipeline, *, shared_broker: bool = True) -> None:
    """Stop the processes, drop the database and (on the shared broker) the namespace's queues:
    ``<session>r.`` does not start with ``<session>.``, so the session clean-up would miss them."""
    pipeline.stop()
    drop_database(pipeline.db_name)
    if shared_broker:
        delete_broker_namespace(pipeline.namespace)


async def fetch(pipeline: Pipeline, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of the pipeline's database, read as the admin (across the services' schemas)."""
    conn = await asyncpg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + pipeline.db_name)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def document_counts(pipeline: Pipeline, document_ids: list[str]) -> dict[str, dict[str, int]]:
    rows = await fetch(
        pipeline,
        """
        SELECT d.id::text AS id, d.status, d.generation, d.attempts, d.chunks,
          (SELECT count(*) FROM chunker.chunks c WHERE c.document_id = d.id AND c.generation = d.generation)
            AS chunker_rows,
          (SELECT count(DISTINCT chunk_index) FROM chunker.chunks c WHERE c.document_id = d.id) AS chunker_all,
          (SELECT count(*) FROM query.chunks q WHERE q.document_id = d.id AND q.generation = d.generation)
            AS read_model_rows,
          (SELECT count(*) FROM query.chunks q WHERE q.document_id = d.id) AS read_model_all
        FROM ingest.documents d WHERE d.id = ANY($1::uuid[])
        """,
        document_ids,
    )
    return {r["id"]: r for r in rows}


def qdrant_points(pipeline: Pipeline, document_ids: list[str]) -> dict[str, int]:
    """Counted with the query service stopped: local mode lets one process open the store."""
    query = pipeline.services["query"]
    query.stop()
    try:
        client = QdrantClient(path=str(pipeline.var_dir / "qdrant"))
        try:
            return {
                d: client.count(
                    "chunks",
                    count_filter=qm.Filter(must=[qm.FieldCondition(key="document_id", match=qm.MatchValue(value=d))]),
                    exact=True,
                ).count
                for d in document_ids
            }
        finally:
            client.close()
    finally:
        query.start()
        query.wait_ready()
