"""The documents HTTP API against the real PostgreSQL, RabbitMQ and a local blob store."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from vectrion_common.identity import IDENTITY_HEADER, Identity, sign_identity

GOOD_PDF = "docling_multi_page.pdf"
DOCUMENT_FIELDS = {
    "id", "filename", "status", "error", "attempts", "pages", "pages_without_text", "chunks",
    "generation", "created_at", "updated_at",
}  # fmt: skip


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug)
    assert body["title"] and body["detail"]
    return body


async def test_upload_of_a_valid_pdf_answers_202_and_commits_the_row_with_its_outbox_event(
    app_client, admin_conn, make_identity, read_pdf, upload, tmp_path: Path
) -> None:
    app, client = app_client
    await app.state.relay.stop()  # keep the outbox row in place to look at it
    identity = make_identity()
    data = read_pdf(GOOD_PDF)

    response = await upload(client, identity, data, filename="essay.pdf")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body.keys() >= DOCUMENT_FIELDS
    assert body["status"] == "uploaded"
    assert body["pages"] == 5
    assert body["generation"] == 1
    assert response.headers["location"] == f"/v1/documents/{body['id']}"
    row = await admin_conn.fetchrow("SELECT * FROM ingest.documents WHERE id = $1", uuid.UUID(body["id"]))
    assert row["tenant_id"] == identity.tenant_id
    assert row["owner_id"] == identity.user_id
    assert row["status"] == "uploaded"
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["storage_key"] == f"{identity.tenant_id}/{body['id']}/original"
    assert row["visibility"] == "tenant"
    assert (tmp_path / "blobs" / row["storage_key"]).read_bytes() == data
    events = await admin_conn.fetch(
        "SELECT routing_key, payload FROM ingest.outbox WHERE payload->>'document_id' = $1", body["id"]
    )
    assert [e["routing_key"] for e in events] == ["document.uploaded.v1"]
    payload = json.loads(events[0]["payload"])
    assert payload["storage_key"] == row["storage_key"]
    assert payload["sha256"] == row["sha256"]
    assert payload["generation"] == 1
    assert payload["tenant_id"] == str(identity.tenant_id)


async def test_uploading_the_same_bytes_again_answers_200_with_the_same_document_and_no_new_event(
    app_client, admin_conn, make_identity, read_pdf, upload
) -> None:
    app, client = app_client
    await app.state.relay.stop()
    identity = make_identity()
    first = await upload(client, identity, read_pdf(GOOD_PDF), filename="a.pdf")
    colleague = make_identity(tenant_id=identity.tenant_id)
    second = await upload(client, colleague, read_pdf(GOOD_PDF), filename="b.pdf")

    assert first.status_code == 202
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["filename"] == "a.pdf"
    assert await admin_conn.fetchval(
        "SELECT count(*) FROM ingest.documents WHERE tenant_id = $1", identity.tenant_id
    ) == 1
    assert await admin_conn.fetchval(
        "SELECT count(*) FROM ingest.outbox WHERE payload->>'tenant_id' = $1", str(identity.tenant_id)
    ) == 1


async def test_the_same_bytes_in_another_tenant_are_a_separate_document(
    app_client, make_identity, read_pdf, upload
) -> None:
    _, client = app_client
    first = await upload(client, make_identity(), read_pdf(GOOD_PDF))
    second = await upload(client, make_identity(), read_pdf(GOOD_PDF))
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]


async def test_a_duplicate_of_someone_elses_private_document_is_refused_without_revealing_it(
    app_client, make_identity, read_pdf, upload
) -> None:
    _, client = app_client
    owner = make_identity()
    await upload(client, owner, read_pdf(GOOD_PDF), filename="secret-plan.pdf", visibility="private")
    response = await upload(client, make_identity(tenant_id=owner.tenant_id), read_pdf(GOOD_PDF))
    body = assert_problem(response, 409, "duplicate-document")
    assert "secret-plan" not in response.text
    assert "id" not in body


@pytest.mark.parametrize(
    ("file", "status", "slug"),
    [
        ("pdfplumber_password-example.pdf", 422, "encrypted-pdf"),
        ("pdfjs_bug1020226.pdf", 422, "invalid-pdf"),
        ("pdfplumber_empty.pdf", 422, "empty-file"),
        ("pdfjs_freeculture.pdf", 413, "file-too-large"),  # 2.6 MB, the test limit is 2 MiB
    ],
)
async def test_rejected_uploads_answer_problem_json_and_store_nothing(
    app_client, admin_conn, make_identity, read_pdf, upload, tmp_path: Path, file: str, status: int, slug: str
) -> None:
    _, client = app_client
    identity = make_identity()

    response = await upload(client, identity, read_pdf(file), filename=file)

    body = assert_problem(response, status, slug)
    if slug == "invalid-pdf":
        assert body["reason"]
    assert await admin_conn.fetchval(
        "SELECT count(*) FROM ingest.documents WHERE tenant_id = $1", identity.tenant_id
    ) == 0
    assert not (tmp_path / "blobs" / str(identity.tenant_id)).exists()


async def test_a_pdf_over_the_page_limit_answers_422(running_app, make_identity, read_pdf, upload) -> None:
    async with running_app(max_pages=4) as (_, client):
        response = await upload(client, make_identity(), read_pdf(GOOD_PDF))
    body = assert_problem(response, 422, "too-many-pages")
    assert (body["pages"], body["max_pages"]) == (5, 4)


async def test_an_upload_without_a_file_answers_422(app_client, make_identity, auth_headers) -> None:
    _, client = app_client
    response = await client.post("/v1/documents", data={"visibility": "tenant"}, headers=auth_headers(make_identity()))
    assert_problem(response, 422, "validation-error")


async def test_another_tenants_document_answers_404(app_client, make_identity, read_pdf, upload, auth_headers) -> None:
    _, client = app_client
    created = (await upload(client, make_identity(), read_pdf(GOOD_PDF))).json()
    stranger = make_identity()
    admin_elsewhere = make_identity(role="platform_admin")

    for caller in (stranger, admin_elsewhere):
        response = await client.get(f"/v1/documents/{created['id']}", headers=auth_headers(caller))
        assert_problem(response, 404, "not-found")
        listing = await client.get("/v1/documents", headers=auth_headers(caller))
        assert listing.json()["items"] == []


async def test_private_documents_are_visible_only_to_their_owner(
    app_client, make_identity, read_pdf, upload, auth_headers
) -> None:
    _, client = app_client
    owner = make_identity()
    colleague = make_identity(tenant_id=owner.tenant_id)
    private = (await upload(client, owner, read_pdf(GOOD_PDF), visibility="private")).json()
    shared = (await upload(client, colleague, read_pdf("pypdfsamples_crazyones-pdfa.pdf"))).json()

    owner_view = await client.get("/v1/documents", headers=auth_headers(owner))
    colleague_view = await client.get("/v1/documents", headers=auth_headers(colleague))

    assert {d["id"] for d in owner_view.json()["items"]} == {private["id"], shared["id"]}
    assert {d["id"] for d in colleague_view.json()["items"]} == {shared["id"]}
    own = await client.get(f"/v1/documents/{private['id']}", headers=auth_headers(owner))
    assert own.status_code == 200
    assert own.json().keys() >= DOCUMENT_FIELDS
    hidden = await client.get(f"/v1/documents/{private['id']}", headers=auth_headers(colleague))
    assert_problem(hidden, 404, "not-found")


def _expired_token(identity: Identity) -> str:
    return sign_identity(identity, "test-secret", ttl_seconds=-120)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {IDENTITY_HEADER: "not-a-jwt"},
        {IDENTITY_HEADER: sign_identity(Identity(uuid.uuid4(), uuid.uuid4(), "member"), "wrong-secret")},
        {IDENTITY_HEADER: _expired_token(Identity(uuid.uuid4(), uuid.uuid4(), "member"))},
    ],
    ids=["missing", "garbage", "wrong-secret", "expired"],
)
async def test_calls_without_a_valid_identity_token_answer_401(app_client, read_pdf, headers: dict[str, str]) -> None:
    _, client = app_client
    calls = [
        client.get("/v1/documents", headers=headers),
        client.get(f"/v1/documents/{uuid.uuid4()}", headers=headers),
        client.post("/v1/documents", files={"file": ("a.pdf", read_pdf(GOOD_PDF))}, headers=headers),
    ]
    for call in calls:
        response = await call
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_readiness_reports_db_broker_and_storage(app_client) -> None:
    _, client = app_client
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"db": "ok", "broker": "ok", "storage": "ok"}
