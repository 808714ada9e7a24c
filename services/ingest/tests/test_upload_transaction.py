"""The documents row and its document.uploaded.v1 outbox row commit or roll back together."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

import vectrion_ingest.service
from vectrion_common.messaging.outbox import add_event
from vectrion_ingest.models import documents, outbox


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("moment", ["between-row-and-outbox", "after-outbox-before-commit"])
async def test_a_crash_inside_the_upload_transaction_leaves_neither_row_nor_event_nor_blob(
    app_client, admin_conn, make_identity, read_pdf, auth_headers, tmp_path: Path, monkeypatch, moment: str
) -> None:
    app, _ = app_client
    identity = make_identity()
    seen_inside: dict[str, int] = {}

    async def crashing_add_event(session, table, event) -> None:  # type: ignore[no-untyped-def]
        if moment == "after-outbox-before-commit":
            await add_event(session, table, event)
        # What the transaction holds at the moment of the crash, seen from inside it.
        seen_inside["documents"] = await session.scalar(
            sa.select(sa.func.count()).select_from(documents).where(documents.c.tenant_id == identity.tenant_id)
        )
        seen_inside["outbox"] = await session.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_id == event.event_id)
        )
        raise Crash(moment)

    monkeypatch.setattr(vectrion_ingest.service, "add_event", crashing_add_event)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/v1/documents",
            files={"file": ("a.pdf", read_pdf("docling_multi_page.pdf"))},
            headers=auth_headers(identity),
        )

    assert response.status_code == 500
    assert seen_inside == {
        "documents": 1,
        "outbox": 1 if moment == "after-outbox-before-commit" else 0,
    }
    assert await admin_conn.fetchval(
        "SELECT count(*) FROM ingest.documents WHERE tenant_id = $1", identity.tenant_id
    ) == 0
    assert await admin_conn.fetchval(
        "SELECT count(*) FROM ingest.outbox WHERE payload->>'tenant_id' = $1", str(identity.tenant_id)
    ) == 0
    tenant_dir = tmp_path / "blobs" / str(identity.tenant_id)
    assert not tenant_dir.exists() or not any(p.is_file() for p in tenant_dir.rglob("*"))


async def test_after_a_failed_attempt_the_same_file_uploads_normally(
    app_client, admin_conn, make_identity, read_pdf, upload, monkeypatch
) -> None:
    _, client = app_client
    identity = make_identity()

    async def crash(*_: object) -> None:
        raise Crash("outbox unavailable")

    monkeypatch.setattr(vectrion_ingest.service, "add_event", crash)
    with pytest.raises(Crash):
        await upload(client, identity, read_pdf("docling_multi_page.pdf"))
    monkeypatch.undo()

    response = await upload(client, identity, read_pdf("docling_multi_page.pdf"))
    assert response.status_code == 202, response.text
    document_id = uuid.UUID(response.json()["id"])
    assert await admin_conn.fetchval("SELECT status FROM ingest.documents WHERE id = $1", document_id) == "uploaded"
