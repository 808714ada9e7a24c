"""Reprocess, the stuck-document sweeper and the document side of a DLQ replay."""

from __future__ import annotations

import json
import uuid
from typing import Any

from vectrion_ingest.lifecycle import resumed_status
from vectrion_ingest.status import DocumentStatus

S = DocumentStatus


def test_only_a_failed_document_of_the_replayed_generation_resumes() -> None:
    assert resumed_status(S.FAILED, 2, 2) is S.PROCESSING
    assert resumed_status(S.FAILED, 2, 1) is None  # a stale message: the new generation decides
    assert resumed_status(S.FAILED, 2, None) is None
    for status in (S.UPLOADED, S.PROCESSED, S.INDEXED, S.DELETING, S.DELETED):
        assert resumed_status(status, 1, 1) is None


async def _row(admin_conn: Any, document_id: str) -> Any:
    return await admin_conn.fetchrow("SELECT * FROM ingest.documents WHERE id = $1", uuid.UUID(document_id))


async def test_reprocess_bumps_generation_and_attempts_and_stages_the_new_upload_event(
    app_client, make_identity, read_pdf, upload, auth_headers, admin_conn
) -> None:
    app, client = app_client
    owner = make_identity()
    document_id = (await upload(client, owner, read_pdf("docling_multi_page.pdf"))).json()["id"]
    await admin_conn.execute(
        "UPDATE ingest.documents SET status = 'failed', error = 'x' WHERE id = $1", uuid.UUID(document_id)
    )
    await app.state.relay.stop()  # keep the outbox row where the test can see it

    response = await client.post(f"/v1/documents/{document_id}/reprocess", headers=auth_headers(owner))

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["generation"], body["attempts"], body["error"]) == ("uploaded", 2, 2, None)
    staged = await admin_conn.fetch(
        "SELECT payload FROM ingest.outbox WHERE routing_key = 'document.uploaded.v1' "
        "AND payload->>'document_id' = $1",
        document_id,
    )
    assert max(json.loads(r["payload"])["generation"] for r in staged) == 2


async def test_reprocess_is_for_the_owner_or_an_admin_and_not_while_deleting(
    app_client, make_identity, read_pdf, upload, auth_headers, admin_conn
) -> None:
    _, client = app_client
    owner = make_identity()
    colleague = make_identity(owner.tenant_id)
    tenant_admin = make_identity(owner.tenant_id, role="admin")
    document_id = (await upload(client, owner, read_pdf("pypdfsamples_multicolumn.pdf"))).json()["id"]

    refused = await client.post(f"/v1/documents/{document_id}/reprocess", headers=auth_headers(colleague))
    assert refused.status_code == 403 and refused.json()["type"].endswith("/forbidden")
    allowed = await client.post(f"/v1/documents/{document_id}/reprocess", headers=auth_headers(tenant_admin))
    assert allowed.status_code == 202

    await admin_conn.execute("UPDATE ingest.documents SET status = 'deleting' WHERE id = $1", uuid.UUID(document_id))
    conflict = await client.post(f"/v1/documents/{document_id}/reprocess", headers=auth_headers(owner))
    assert conflict.status_code == 409 and conflict.json()["type"].endswith("/document-being-deleted")
    other_tenant = await client.post(f"/v1/documents/{document_id}/reprocess", headers=auth_headers(make_identity()))
    assert other_tenant.status_code == 404


async def test_the_sweeper_redrives_a_stuck_document_then_fails_it_when_out_of_attempts(
    running_app, make_identity, read_pdf, upload, admin_conn
) -> None:
    async with running_app(stuck_after_seconds=60, max_pipeline_attempts=2, sweep_interval_seconds=3600) as (
        app,
        client,
    ):
        identity = make_identity()
        document_id = (await upload(client, identity, read_pdf("pypdfsamples_pdflatex-4-pages.pdf"))).json()["id"]
        await app.state.sweeper.sweep()
        assert (await _row(admin_conn, document_id))["generation"] == 1  # not stuck yet

        stale = "UPDATE ingest.documents SET updated_at = now() - interval '2 minutes' WHERE id = $1"
        await admin_conn.execute(stale, uuid.UUID(document_id))
        await app.state.sweeper.sweep()
        row = await _row(admin_conn, document_id)
        assert (row["status"], row["generation"], row["attempts"]) == ("uploaded", 2, 2)

        await admin_conn.execute(stale, uuid.UUID(document_id))
        await app.state.sweeper.sweep()
        row = await _row(admin_conn, document_id)
        assert (row["status"], row["generation"], row["attempts"]) == ("failed", 2, 2)
        assert row["error"].startswith("sweeper: no progress in status uploaded for 60s after 2 pipeline run(s)")

        await admin_conn.execute(stale, uuid.UUID(document_id))
        await app.state.sweeper.sweep()
        again = await _row(admin_conn, document_id)  # failed is not swept again
        assert (again["status"], again["generation"], again["attempts"]) == ("failed", 2, 2)
