"""A PDF from upload to a cited answer, through the gateway of a stack started like `task up`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack, start_stack
from tests.harness import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PDFS = SHARED_DATA / "pdfs"
WORD_PROCESSOR = PDFS / "docling_multi_page.pdf"  # 5 pages, a history of the word processor
TRACEMONKEY = PDFS / "pdfjs_tracemonkey.pdf"  # 14 pages, the TraceMonkey paper


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker_namespace: str) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("stack"), broker_namespace)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as anonymous:
        token = anonymous.post(
            "/v1/auth/token", json={"email": "admin@e2e.test", "password": stack.admin_password}
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=60, headers=headers) as authed:
        yield authed


def upload_and_wait(
    client: httpx.Client, stack: Stack, path: Path, timeout: float = 300
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    with path.open("rb") as f:
        response = client.post("/v1/documents", files={"file": (path.name, f, "application/pdf")})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "uploaded"
    document_id = response.json()["id"]
    seen = ["uploaded"]
    while time.monotonic() - started < timeout:
        document = client.get(f"/v1/documents/{document_id}").json()
        if document["status"] != seen[-1]:
            seen.append(document["status"])
        if document["status"] in ("indexed", "failed"):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"{path.name} not indexed after {timeout}s (states {seen})\n{stack.log_tail()}")
    assert document["status"] == "indexed", (document, stack.log_tail())
    assert set(seen) <= {"uploaded", "processing", "processed", "indexed"}, seen
    return document, time.monotonic() - started


def test_pdf_upload_to_cited_answer_and_second_document_isolation(client: httpx.Client, stack: Stack) -> None:
    essay, essay_seconds = upload_and_wait(client, stack, WORD_PROCESSOR)
    assert essay["pages"] == 5
    assert essay["chunks"] and essay["chunks"] > 0

    answer = client.post("/v1/query", json={"question": "Who patented the typewriter in 1868?"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "Sholes" in body["answer"], body
    assert body["citations"], body
    top = body["citations"][0]
    assert top["document_id"] == essay["id"]
    assert top["page"] == 1
    assert top["filename"] == WORD_PROCESSOR.name
    assert "Sholes" in top["quote"]

    paper, paper_seconds = upload_and_wait(client, stack, TRACEMONKEY)
    assert paper["pages"] == 14

    answer = client.post(
        "/v1/query", json={"question": "What speedups were measured for the dynamic compiler for JavaScript?"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "10x" in body["answer"], body
    cited_documents = {c["document_id"] for c in body["citations"]}
    assert cited_documents == {paper["id"]}, body
    assert body["citations"][0]["page"] == 1

    search = client.post("/v1/search", json={"query": "typewriter Christopher Latham Sholes", "top_k": 3})
    assert search.status_code == 200, search.text
    assert search.json()["results"][0]["document_id"] == essay["id"]

    print(f"\nupload->indexed: {WORD_PROCESSOR.name} 5 pages {essay_seconds:.1f}s; "
          f"{TRACEMONKEY.name} 14 pages {paper_seconds:.1f}s")


def test_requests_without_a_token_are_refused(stack: Stack) -> None:
    response = httpx.post(f"{stack.gateway_url}/v1/query", json={"question": "anything"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
