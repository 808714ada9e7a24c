"""Non-PDF uploads through the HTTP API, with the real PostgreSQL, RabbitMQ and a local blob store.

The test client always claims ``application/pdf``: the stored type must come from the bytes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.documents import docx, with_declared_size

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("filename", "data", "content_type", "pages"),
    [
        ("notes.txt", b"Meeting notes\n\nWe agreed to ship on Friday.\n", "text/plain", 1),
        ("page.html", b"<!DOCTYPE html><html><body><p>Shipping on Friday.</p></body></html>", "text/html", 1),
        ("plan.docx", docx(["Plan", "Ship on Friday."], app_pages=2), DOCX, 2),
    ],
    ids=["text", "html", "docx"],
)
async def test_a_non_pdf_upload_is_stored_with_the_type_its_bytes_prove(
    app_client: Any, admin_conn: Any, make_identity: Any, upload: Any,
    filename: str, data: bytes, content_type: str, pages: int,
) -> None:  # fmt: skip
    app, client = app_client
    await app.state.relay.stop()  # keep the outbox row in place to look at it

    response = await upload(client, make_identity(), data, filename=filename)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["pages"] == pages and body["filename"] == filename
    row = await admin_conn.fetchrow("SELECT * FROM ingest.documents WHERE id = $1", uuid.UUID(body["id"]))
    assert row["content_type"] == content_type
    [event] = await admin_conn.fetch("SELECT payload FROM ingest.outbox WHERE payload->>'document_id' = $1", body["id"])
    assert json.loads(event["payload"])["content_type"] == content_type


@pytest.mark.parametrize(
    ("data", "status", "slug"),
    [
        (bytes(range(256)) * 4, 415, "unsupported-media-type"),
        (b"caf\xe9 in latin-1 is not UTF-8\n", 415, "unsupported-media-type"),
        (with_declared_size(docx(["tiny"]), "word/document.xml", 2**31), 422, "invalid-docx"),
    ],
    ids=["binary-junk", "invalid-utf8", "docx-declaring-2-gib"],
)
async def test_a_refused_upload_answers_problem_json_and_stores_nothing(
    app_client: Any, admin_conn: Any, make_identity: Any, upload: Any, tmp_path: Path,
    data: bytes, status: int, slug: str,
) -> None:  # fmt: skip
    _, client = app_client
    identity = make_identity()

    response = await upload(client, identity, data, filename="upload.docx")

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/" + slug) and body["detail"]
    if status == 415:
        assert "text/markdown" in body["accepted"] and "application/pdf" in body["accepted"]
    count = "SELECT count(*) FROM ingest.documents WHERE tenant_id = $1"
    assert await admin_conn.fetchval(count, identity.tenant_id) == 0
    assert not (tmp_path / "blobs" / str(identity.tenant_id)).exists()
