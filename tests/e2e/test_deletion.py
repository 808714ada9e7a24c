"""The deletion saga through the real pipeline processes: a deleted document is gone everywhere
(read model, Qdrant points, chunks, file), is never searchable once DELETE answered, and late
pipeline work cannot bring it back; deleting twice and reprocessing around a delete are safe."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.pipeline import (
    Pipeline,
    document_counts,
    fetch,
    new_identity,
    qdrant_points,
    start_pipeline,
    stop_pipeline,
)
from tests.harness import SHARED_DATA
from vectrion_common.identity import Identity

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PDFS = SHARED_DATA / "pdfs"
TYPEWRITER = PDFS / "docling_multi_page.pdf"  # about the typewriter (Sholes)
LATEX = PDFS / "pypdfsamples_pdflatex-4-pages.pdf"
LONG = PDFS / "docling_redp5110_sampled.pdf"  # 18 pages: deletable while still in the pipeline
TYPEWRITER_QUERY = "typewriter Christopher Latham Sholes"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, broker_namespace: str) -> Iterator[Pipeline]:
    running = start_pipeline(
        tmp_path_factory.mktemp("deletion"),
        f"{broker_namespace}d",
        # Small batches: a document is several embedder/query messages, so a delete lands among them;
        # 4-page windows: the 18-page document is deleted while the chunker is still streaming it.
        extra_env={
            "VECTRION_EMBEDDING_BATCH_SIZE": "8",
            "VECTRION_EXTRACT_WINDOW_PAGES": "4",
            "VECTRION_DELETE_WAIT_SECONDS": "5",
        },
    )
    try:
        yield running
    finally:
        stop_pipeline(running)


def _query_url(pipeline: Pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.services['query'].port}"


def _search_documents(pipeline: Pipeline, identity: Identity, text: str) -> set[str]:
    response = httpx.post(
        f"{_query_url(pipeline)}/v1/search",
        json={"query": text, "top_k": 20},
        headers=pipeline.headers(identity),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {r["document_id"] for r in response.json()["results"]}


def _delete(pipeline: Pipeline, identity: Identity, document_id: str) -> httpx.Response:
    return httpx.delete(
        f"{pipeline.ingest_url}/v1/documents/{document_id}", headers=pipeline.headers(identity), timeout=30
    )


async def _saga_rows(pipeline: Pipeline, document_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await fetch(
        pipeline,
        """
        SELECT d.id::text AS id, d.status, d.storage_key, d.index_removed_at, d.chunks_removed_at, d.deleted_at,
          EXISTS (SELECT 1 FROM query.deleted_documents t WHERE t.document_id = d.id) AS query_tombstone,
          EXISTS (SELECT 1 FROM chunker.deleted_documents t WHERE t.document_id = d.id) AS chunker_tombstone,
          (SELECT count(*) FROM chunker.chunks c WHERE c.document_id = d.id) AS chunker_rows
        FROM ingest.documents d WHERE d.id = ANY($1::uuid[])
        """,
        document_ids,
    )
    return {r["id"]: r for r in rows}


def _wait_deleted(pipeline: Pipeline, document_ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = asyncio.run(_saga_rows(pipeline, document_ids))
        if all(r["status"] == "deleted" for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {s.name}\n{s.log_tail(15)}" for s in pipeline.services.values())
            raise AssertionError(f"not deleted after {timeout}s: {rows}\n{tails}")
        time.sleep(0.25)


def _assert_gone_everywhere(pipeline: Pipeline, rows: dict[str, dict[str, Any]]) -> None:
    ids = list(rows)
    counts = asyncio.run(document_counts(pipeline, ids))
    points = qdrant_points(pipeline, ids)
    for document_id, row in rows.items():
        assert row["query_tombstone"] and row["chunker_tombstone"], row
        assert row["index_removed_at"] and row["chunks_removed_at"] and row["deleted_at"], row
        assert row["chunker_rows"] == 0, row
        assert counts[document_id]["read_model_all"] == 0, counts[document_id]
        assert points[document_id] == 0, (document_id, points[document_id])
        assert not (pipeline.var_dir / "blobs" / row["storage_key"]).exists(), row["storage_key"]


def test_a_deleted_document_is_unsearchable_at_202_and_then_gone_everywhere(pipeline: Pipeline) -> None:
    identity = new_identity()
    doomed = pipeline.upload(identity, TYPEWRITER).json()["id"]
    kept = pipeline.upload(identity, LATEX).json()["id"]
    settled = pipeline.wait_settled(identity, [doomed, kept])
    assert {d["status"] for d in settled.values()} == {"indexed"}
    assert doomed in _search_documents(pipeline, identity, TYPEWRITER_QUERY)
    asked = httpx.post(
        f"{_query_url(pipeline)}/v1/query",
        json={"question": "Who invented the typewriter, Christopher Latham Sholes?"},
        headers=pipeline.headers(identity),
        timeout=60,
    )
    assert asked.status_code == 200, asked.text
    assert doomed in {c["document_id"] for c in asked.json()["citations"]}, asked.json()

    response = _delete(pipeline, identity, doomed)
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("deleting", "deleted")
    # From the 202 on, no search returns it, dense or lexical.
    for _ in range(5):
        assert doomed not in _search_documents(pipeline, identity, TYPEWRITER_QUERY)

    rows = _wait_deleted(pipeline, [doomed])
    _assert_gone_everywhere(pipeline, rows)
    # Conversation history keeps no text of it: the answer that cited it is redacted.
    history = httpx.get(
        f"{_query_url(pipeline)}/v1/conversations/{asked.json()['conversation_id']}",
        headers=pipeline.headers(identity),
        timeout=30,
    ).json()["messages"]
    answer = next(m for m in history if m["role"] == "assistant")
    assert answer["content"].startswith("[This answer was removed")
    cited = [c for c in answer["citations"] if c["document_id"] == doomed]
    assert cited and all(c.get("deleted") and "quote" not in c for c in cited), cited
    assert (
        httpx.get(
            f"{pipeline.ingest_url}/v1/documents/{doomed}", headers=pipeline.headers(identity), timeout=10
        ).status_code
        == 404
    )
    # The other document of the tenant is untouched.
    assert asyncio.run(document_counts(pipeline, [kept]))[kept]["read_model_rows"] == settled[kept]["chunks"]
    assert kept in _search_documents(pipeline, identity, "pdflatex sample document")

    # Deleting again: the document is gone, so 404. The same bytes may be uploaded anew.
    assert _delete(pipeline, identity, doomed).status_code == 404
    again = pipeline.upload(identity, TYPEWRITER)
    assert again.status_code == 202 and again.json()["id"] != doomed, again.text
    assert pipeline.wait_settled(identity, [again.json()["id"]])[again.json()["id"]]["status"] == "indexed"
    assert again.json()["id"] in _search_documents(pipeline, identity, TYPEWRITER_QUERY)


def test_only_the_owner_or_a_tenant_admin_may_delete_and_other_tenants_see_nothing(pipeline: Pipeline) -> None:
    owner = new_identity()
    document_id = pipeline.upload(owner, LATEX).json()["id"]
    colleague = Identity(user_id=new_identity().user_id, tenant_id=owner.tenant_id, role="member")
    assert _delete(pipeline, colleague, document_id).status_code == 403
    assert _delete(pipeline, new_identity("admin"), document_id).status_code == 404  # another tenant
    admin = Identity(user_id=new_identity().user_id, tenant_id=owner.tenant_id, role="admin")
    assert _delete(pipeline, admin, document_id).status_code == 202
    _wait_deleted(pipeline, [document_id])


def test_delete_during_processing_leaves_nothing_behind_even_from_late_batches(pipeline: Pipeline) -> None:
    identity = new_identity()
    chunker, query = pipeline.services["chunker"], pipeline.services["query"]
    seen_chunked = len(chunker.events("chunker.document_chunked"))
    seen_indexed = len(query.events("chunks.indexed"))

    at_once = pipeline.upload(identity, LONG).json()["id"]
    assert _delete(pipeline, identity, at_once).status_code == 202

    after_chunking = pipeline.upload(identity, TYPEWRITER).json()["id"]
    _wait_for(lambda: len(chunker.events("chunker.document_chunked")) > seen_chunked)
    assert _delete(pipeline, identity, after_chunking).status_code == 202

    mid_indexing = pipeline.upload(identity, LATEX).json()["id"]
    _wait_for(lambda: any(e.get("document_id") == mid_indexing for e in query.events("chunks.indexed")[seen_indexed:]))
    assert _delete(pipeline, identity, mid_indexing).status_code == 202

    ids = [at_once, after_chunking, mid_indexing]
    _wait_deleted(pipeline, ids)
    # Let every batch still queued for these documents arrive and be dropped, then look.
    _wait_quiet(pipeline)
    rows = asyncio.run(_saga_rows(pipeline, ids))
    _assert_gone_everywhere(pipeline, rows)
    for document_id in ids:
        assert document_id not in _search_documents(pipeline, identity, TYPEWRITER_QUERY)


def test_without_the_query_service_delete_answers_503_pending_until_search_is_clean(pipeline: Pipeline) -> None:
    identity = new_identity()
    document_id = pipeline.upload(identity, LATEX).json()["id"]
    pipeline.wait_settled(identity, [document_id])
    query = pipeline.services["query"]
    query.stop()
    try:
        pending = _delete(pipeline, identity, document_id)
        assert pending.status_code == 503, pending.text
        assert pending.json()["type"].endswith("deletion-pending") and pending.headers["Retry-After"]
    finally:
        query.start()
        query.wait_ready()
    # The deletion went on meanwhile; repeating the DELETE answers 202 once search is clean.
    deadline = time.monotonic() + 60
    while (again := _delete(pipeline, identity, document_id)).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert again.status_code in (202, 404), again.text
    assert document_id not in _search_documents(pipeline, identity, "pdflatex sample document")
    _wait_deleted(pipeline, [document_id])


def test_deleting_twice_at_once_is_one_deletion(pipeline: Pipeline) -> None:
    identity = new_identity()
    document_id = pipeline.upload(identity, LATEX).json()["id"]
    pipeline.wait_settled(identity, [document_id])
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: _delete(pipeline, identity, document_id), range(2)))
    assert [r.status_code for r in responses] == [202, 202], [r.text for r in responses]
    rows = _wait_deleted(pipeline, [document_id])
    _assert_gone_everywhere(pipeline, rows)
    ingest = pipeline.services["ingest"]
    finished = [e for e in ingest.events("document.deleted") if e.get("document_id") == document_id]
    assert len(finished) == 1, finished


def test_reprocess_is_refused_while_deleting_and_reprocess_during_processing_keeps_one_generation(
    pipeline: Pipeline,
) -> None:
    identity = new_identity()
    doomed = pipeline.upload(identity, LATEX).json()["id"]
    pipeline.wait_settled(identity, [doomed])
    ingest = pipeline.services["ingest"]
    # Hold the saga in `deleting`: the chunker is down, so its confirmation cannot come yet.
    pipeline.services["chunker"].stop()
    try:
        assert _delete(pipeline, identity, doomed).status_code == 202
        refused = httpx.post(
            f"{pipeline.ingest_url}/v1/documents/{doomed}/reprocess", headers=pipeline.headers(identity), timeout=10
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("document-being-deleted")
    finally:
        pipeline.services["chunker"].start()
        pipeline.services["chunker"].wait_ready()
    _wait_deleted(pipeline, [doomed])
    assert ingest.events("document.deleted")

    busy = pipeline.upload(identity, TYPEWRITER).json()["id"]
    response = httpx.post(
        f"{pipeline.ingest_url}/v1/documents/{busy}/reprocess", headers=pipeline.headers(identity), timeout=10
    )
    assert response.status_code == 202, response.text
    done = pipeline.wait_settled(identity, [busy], timeout=120)[busy]
    assert done["status"] == "indexed" and done["generation"] == 2
    _wait_quiet(pipeline)
    counts = asyncio.run(document_counts(pipeline, [busy]))[busy]
    assert counts["chunks"] == counts["chunker_rows"] == counts["chunker_all"], counts
    assert counts["chunks"] == counts["read_model_rows"] == counts["read_model_all"], counts
    assert qdrant_points(pipeline, [busy])[busy] == counts["chunks"]


def _wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _wait_quiet(pipeline: Pipeline, quiet_seconds: float = 3.0, timeout: float = 60) -> None:
    """Until no pipeline service has logged anything for ``quiet_seconds``."""
    logs = [s.log_path for s in pipeline.services.values()]
    deadline = time.monotonic() + timeout
    sizes = [p.stat().st_size for p in logs]
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = [p.stat().st_size for p in logs]
        if now != sizes:
            sizes, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_seconds:
            return
    raise AssertionError("the pipeline did not go quiet")


def _reconcile(pipeline: Pipeline, *, repair: bool) -> dict[str, Any]:
    response = httpx.post(
        f"{pipeline.ingest_url}/v1/admin/reconcile",
        params={"repair": str(repair).lower()},
        headers=pipeline.headers(new_identity("platform_admin")),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_reconciler_finds_and_repairs_lost_rows_leftovers_and_orphan_files(pipeline: Pipeline) -> None:
    identity = new_identity()
    damaged = pipeline.upload(identity, LATEX).json()["id"]
    leftover = pipeline.upload(identity, TYPEWRITER).json()["id"]
    settled = pipeline.wait_settled(identity, [damaged, leftover])
    assert {d["status"] for d in settled.values()} == {"indexed"}
    _wait_quiet(pipeline)
    # Damage: a read-model row lost; a document marked deleted whose data stayed; a stray file.
    asyncio.run(
        fetch(
            pipeline,
            "DELETE FROM query.chunks WHERE chunk_id = (SELECT chunk_id FROM query.chunks WHERE document_id = $1"
            " ORDER BY chunk_index LIMIT 1)",
            uuid.UUID(damaged),
        )
    )
    asyncio.run(fetch(pipeline, "UPDATE ingest.documents SET status = 'deleted' WHERE id = $1", uuid.UUID(leftover)))
    stray = pipeline.var_dir / "blobs" / "stray-tenant" / "stray-document" / "original"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"%PDF-1.4 nobody owns me")
    old = time.time() - 2 * 3600
    os.utime(stray, (old, old))

    looked = _reconcile(pipeline, repair=False)
    kinds = {(f["kind"], f["document_id"]) for f in looked["findings"]}
    assert ("index_mismatch", damaged) in kinds, looked
    assert ("deleted_but_held", leftover) in kinds, looked
    assert ("orphan_file", None) in kinds, looked
    assert looked["repaired"] == {} and stray.exists()

    fixed = _reconcile(pipeline, repair=True)
    assert fixed["repaired"] == {"reprocessed": 1, "deletion_requested": 1, "orphan_files_deleted": 1}, fixed
    assert not stray.exists()
    done = pipeline.wait_settled(identity, [damaged], until=("indexed",), timeout=120)[damaged]
    assert done["generation"] == 2
    _wait_quiet(pipeline)
    counts = asyncio.run(document_counts(pipeline, [damaged, leftover]))
    assert counts[damaged]["chunks"] == counts[damaged]["read_model_rows"] == counts[damaged]["chunker_rows"]
    assert counts[leftover]["read_model_all"] == 0 and counts[leftover]["chunker_all"] == 0
    assert qdrant_points(pipeline, [damaged, leftover]) == {damaged: counts[damaged]["chunks"], leftover: 0}

    again = _reconcile(pipeline, repair=True)
    mine = [f for f in again["findings"] if f["document_id"] in (damaged, leftover)]
    assert mine == [] and "orphan_file" not in {f["kind"] for f in again["findings"]}, again


def test_only_platform_admins_may_reconcile(pipeline: Pipeline) -> None:
    response = httpx.post(
        f"{pipeline.ingest_url}/v1/admin/reconcile", headers=pipeline.headers(new_identity("admin")), timeout=30
    )
    assert response.status_code == 403
