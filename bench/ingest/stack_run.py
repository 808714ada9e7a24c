"""Driving a running stack through the gateway: fresh tenants, uploads, waiting for `indexed`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.ingest.corpus import Pdf
from tests.e2e.stack import Stack

SETTLED = ("indexed", "failed")
POLL_SECONDS = 0.25


def login(base_url: str, email: str, password: str) -> httpx.Client:
    with httpx.Client(base_url=base_url, timeout=60) as anonymous:
        response = anonymous.post("/v1/auth/token", json={"email": email, "password": password})
        response.raise_for_status()
        token = response.json()["access_token"]
    return httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {token}"})


def admin_client(stack: Stack) -> httpx.Client:
    return login(stack.gateway_url, "admin@e2e.test", stack.admin_password)


def fresh_tenant_client(stack: Stack, admin: httpx.Client, label: str) -> httpx.Client:
    """A new tenant with its own admin user: its uploads never dedupe against earlier runs."""
    tenant = admin.post("/v1/admin/tenants", json={"name": f"bench-{label}-{uuid.uuid4().hex[:6]}"})
    tenant.raise_for_status()
    email, password = f"bench-{uuid.uuid4().hex[:8]}@bench.test", uuid.uuid4().hex
    user = admin.post(
        "/v1/admin/users",
        json={"email": email, "password": password, "role": "admin", "tenant_id": tenant.json()["id"]},
    )
    user.raise_for_status()
    return login(stack.gateway_url, email, password)


def upload(client: httpx.Client, name: str, data: bytes) -> str:
    response = client.post("/v1/documents", files={"file": (name, data, "application/pdf")})
    response.raise_for_status()
    document_id: str = response.json()["id"]
    return document_id


def wait_settled(client: httpx.Client, ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll the tenant's document list until every id is indexed or failed; returns them by id."""
    return poll_listed(
        client,
        ids,
        lambda listed: len(listed) == len(ids) and all(d["status"] in SETTLED for d in listed.values()),
        timeout,
        "settled",
    )


def poll_listed(
    client: httpx.Client,
    ids: set[str],
    done: Callable[[dict[str, dict[str, Any]]], bool],
    timeout: float,
    waiting_for: str,
) -> dict[str, dict[str, Any]]:
    """Poll the tenant's document list until ``done`` holds for the listed documents among ``ids``
    (by id); returns them."""
    deadline = time.monotonic() + timeout
    while True:
        listed = client.get("/v1/documents", params={"limit": 500}).json()["items"]
        documents = {d["id"]: d for d in listed if d["id"] in ids}
        if done(documents):
            return documents
        if time.monotonic() > deadline:
            pending = sorted(f"{d['filename']} ({d['status']})" for d in documents.values())
            raise TimeoutError(f"not {waiting_for} after {timeout}s; listed: {pending}")
        time.sleep(POLL_SECONDS)


def delete_all(client: httpx.Client, ids: set[str], timeout: float = 300) -> float:
    """DELETE every document (the deletion saga) and wait until each is ``deleted``; seconds taken.

    A 503 ``deletion-pending`` (query did not confirm in time) is retried a second later. A
    ``deleted`` document leaves the tenant's list, so the wait ends when none of them is listed."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        for document_id in sorted(pending):
            response = client.delete(f"/v1/documents/{document_id}")
            if response.status_code in (200, 202):
                pending.discard(document_id)
            elif response.status_code != 503:
                response.raise_for_status()
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"deletion not accepted after {timeout}s: {len(pending)} documents")
            time.sleep(1)
    poll_listed(client, ids, lambda listed: not listed, max(deadline - time.monotonic(), 0.0), "deleted")
    return time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class IngestionRun:
    seconds: float  # first upload sent -> every document seen settled (client clock)
    upload_seconds: float  # first upload sent -> last 202 received
    documents: dict[str, dict[str, Any]]

    @property
    def indexed(self) -> list[dict[str, Any]]:
        return [d for d in self.documents.values() if d["status"] == "indexed"]

    def summary(self) -> dict[str, Any]:
        indexed = self.indexed
        pages = sum(d["pages"] or 0 for d in indexed)
        chunks = sum(d["chunks"] or 0 for d in indexed)
        created = [datetime.fromisoformat(d["created_at"]) for d in self.documents.values()]
        updated = [datetime.fromisoformat(d["updated_at"]) for d in indexed]
        server_span = (max(updated) - min(created)).total_seconds() if updated else None
        return {
            "documents": len(self.documents),
            "indexed": len(indexed),
            "failed": sorted(d["filename"] for d in self.documents.values() if d["status"] != "indexed"),
            "pages": pages,
            "chunks": chunks,
            "seconds": round(self.seconds, 2),
            "upload_seconds": round(self.upload_seconds, 2),
            "server_span_seconds": round(server_span, 2) if server_span is not None else None,
            "pages_per_s": round(pages / self.seconds, 2),
            "chunks_per_s": round(chunks / self.seconds, 2),
        }


def ingest_all(client: httpx.Client, pdfs: list[Pdf], timeout: float = 1800) -> IngestionRun:
    payloads = [(pdf.name, pdf.path.read_bytes()) for pdf in pdfs]
    started = time.perf_counter()
    ids = {upload(client, name, data) for name, data in payloads}
    uploaded = time.perf_counter()
    documents = wait_settled(client, ids, timeout)
    return IngestionRun(time.perf_counter() - started, uploaded - started, documents)
