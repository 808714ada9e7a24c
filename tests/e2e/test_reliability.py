"""Poison messages, DLQ replay, reprocess, and every PDF of the shared corpus, through the real
pipeline processes (ingest, chunker, embedder, query) on the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import csv
import itertools
import random
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.documents import docx
from tests.e2e.pipeline import Pipeline, new_identity, start_pipeline, stop_pipeline
from tests.harness import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PDFS = SHARED_DATA / "pdfs"
MANIFEST = list(csv.DictReader((PDFS / "manifest.csv").open(encoding="utf-8")))
ESSAY = PDFS / "docling_multi_page.pdf"
MAX_ATTEMPTS = 4
BASE_DELAY_MS = 300


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, broker_namespace: str) -> Iterator[Pipeline]:
    running = start_pipeline(
        tmp_path_factory.mktemp("pipeline"),
        f"{broker_namespace}r",
        extra_env={
            "VECTRION_RETRY__MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "VECTRION_RETRY__BASE_DELAY_MS": str(BASE_DELAY_MS),
            "VECTRION_RETRY__JITTER": "0.1",
        },
    )
    try:
        yield running
    finally:
        stop_pipeline(running)


def _admin(pipeline: Pipeline) -> dict[str, str]:
    return pipeline.headers(new_identity("platform_admin"))


def test_a_poison_message_is_retried_with_growing_delays_parked_and_replayed_once_fixed(
    pipeline: Pipeline,
) -> None:
    chunker = pipeline.services["chunker"]
    identity = new_identity()
    chunker.stop()  # so the storage fault is in place before the chunker sees the upload
    try:
        response = pipeline.upload(identity, ESSAY)
        assert response.status_code == 202, response.text
        document_id = response.json()["id"]
        # The storage fault: the object's path answers an I/O error (a directory), not "missing".
        blob = pipeline.var_dir / "blobs" / str(identity.tenant_id) / document_id / "original"
        shutil.move(blob, blob.with_name("original.kept"))
        blob.mkdir()
    finally:
        chunker.start()
        chunker.wait_ready()

    failed = pipeline.wait_settled(identity, [document_id], timeout=60)[document_id]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("chunker: IsADirectoryError"), failed
    assert f"after {MAX_ATTEMPTS} attempts" in failed["error"]

    mine = [r for r in chunker.events("consumer.retry_scheduled") if r.get("document_id") == document_id]
    gave_up = [r for r in chunker.events("consumer.gave_up") if r.get("document_id") == document_id]
    assert [r["attempt"] for r in mine] == list(range(1, MAX_ATTEMPTS))
    assert len(gave_up) == 1 and gave_up[0]["attempts"] == MAX_ATTEMPTS
    times = [datetime.fromisoformat(r["timestamp"]) for r in [*mine, *gave_up]]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times)]
    assert gaps == sorted(gaps), gaps
    for n, gap in enumerate(gaps, start=1):
        assert BASE_DELAY_MS * 2 ** (n - 1) * 0.9 <= gap <= BASE_DELAY_MS * 2 ** (n - 1) * 1.1 + 500, gaps

    listing = httpx.get(f"{pipeline.ingest_url}/v1/admin/dlq", headers=_admin(pipeline), timeout=30)
    assert listing.status_code == 200, listing.text
    (parked,) = [m for m in listing.json()["items"] if m["document_id"] == document_id]
    assert parked["queue"].endswith(".chunker.document.uploaded.v1.dlq")
    assert parked["attempts"] == MAX_ATTEMPTS and parked["permanent"] is False
    assert parked["error"].startswith("IsADirectoryError")
    members = httpx.get(f"{pipeline.ingest_url}/v1/admin/dlq", headers=pipeline.headers(identity), timeout=30)
    assert members.status_code == 403

    blob.rmdir()
    shutil.move(blob.with_name("original.kept"), blob)  # the fault is fixed
    replay = httpx.post(
        f"{pipeline.ingest_url}/v1/admin/dlq/{parked['message_id']}/replay", headers=_admin(pipeline), timeout=30
    )
    assert replay.status_code == 200, replay.text

    done = pipeline.wait_settled(identity, [document_id], timeout=90, until=("indexed",))[document_id]
    assert done["error"] is None and done["chunks"] > 0 and done["generation"] == 1 and done["attempts"] == 2
    after = httpx.get(f"{pipeline.ingest_url}/v1/admin/dlq", headers=_admin(pipeline), timeout=30).json()["items"]
    assert all(m["message_id"] != parked["message_id"] for m in after)
    again = httpx.post(
        f"{pipeline.ingest_url}/v1/admin/dlq/{parked['message_id']}/replay", headers=_admin(pipeline), timeout=30
    )
    assert again.status_code == 404


def test_reprocess_runs_a_new_generation_that_replaces_the_old_one(pipeline: Pipeline) -> None:
    identity = new_identity()
    document_id = pipeline.upload(identity, PDFS / "pypdfsamples_pdflatex-4-pages.pdf").json()["id"]
    first = pipeline.wait_settled(identity, [document_id])[document_id]
    assert first["status"] == "indexed" and first["generation"] == 1

    response = httpx.post(
        f"{pipeline.ingest_url}/v1/documents/{document_id}/reprocess", headers=pipeline.headers(identity), timeout=10
    )
    assert response.status_code == 202, response.text
    assert response.json()["generation"] == 2 and response.json()["attempts"] == 2
    assert response.json()["status"] == "uploaded"
    second = pipeline.wait_settled(identity, [document_id], timeout=90)[document_id]
    assert second["status"] == "indexed" and second["generation"] == 2
    assert second["chunks"] == first["chunks"]

    stranger = new_identity()
    response = httpx.post(
        f"{pipeline.ingest_url}/v1/documents/{document_id}/reprocess", headers=pipeline.headers(stranger), timeout=10
    )
    assert response.status_code == 404


@pytest.mark.parametrize("row", MANIFEST, ids=[r["file"] for r in MANIFEST])
def test_every_pdf_of_the_manifest_ends_as_its_expect_column_says(pipeline: Pipeline, row: dict[str, str]) -> None:
    identity = new_identity()
    response = pipeline.upload(identity, PDFS / row["file"])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert row["expect"] != "text", (row["file"], response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.status_code in (413, 415, 422), response.text
        return
    document = pipeline.wait_settled(identity, [response.json()["id"]], timeout=240)[response.json()["id"]]
    if row["expect"] == "text":
        assert document["status"] == "indexed", document
        assert document["chunks"] > 0
    else:
        assert document["status"] == "failed", document
        assert document["error"], document


def _mutations(seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    originals = [PDFS / "docling_multi_page.pdf", PDFS / "pypdfsamples_multicolumn.pdf"]
    cases: list[tuple[str, bytes]] = []
    for path in originals:
        data = path.read_bytes()
        for fraction in (0.1, 0.5, 0.9, 0.99):
            cases.append((f"{path.stem}-truncated-{fraction}", data[: int(len(data) * fraction)]))
        for n in range(3):
            flipped = bytearray(data)
            for _ in range(200):
                flipped[rng.randrange(16, len(flipped))] = rng.randrange(256)
            cases.append((f"{path.stem}-flipped-{n}", bytes(flipped)))
        cases.append((f"{path.stem}-no-xref", data.replace(b"startxref", b"startxreg").replace(b"xref", b"xreg")))
    cases.append(("header-only", b"%PDF-1.7\n"))
    cases.append(("garbage-after-header", b"%PDF-1.4\n" + bytes(rng.randrange(256) for _ in range(4096))))
    return cases


def test_fuzzed_and_truncated_pdfs_never_answer_5xx_nor_stay_stuck(pipeline: Pipeline) -> None:
    identity = new_identity()
    accepted: dict[str, str] = {}
    for name, data in _mutations(seed=4):
        response = pipeline.upload(identity, Path(f"{name}.pdf"), data)
        assert response.status_code < 500, (name, response.text)
        if response.status_code in (200, 202):
            accepted[response.json()["id"]] = name
        else:
            assert response.status_code in (413, 415, 422), (name, response.status_code)
            assert response.json()["type"], name
    settled = pipeline.wait_settled(identity, accepted, timeout=240)
    for document_id, document in settled.items():
        assert document["status"] in ("indexed", "failed"), (accepted[document_id], document)
        if document["status"] == "failed":
            assert document["error"], (accepted[document_id], document)
    for name in ("chunker", "embedder", "query", "ingest"):
        service = pipeline.services[name]
        assert service.process is not None and service.process.poll() is None, f"{name} died"
    print(f"\nfuzz: {len(_mutations(4))} files, {len(accepted)} accepted, "
          f"{sum(d['status'] == 'indexed' for d in settled.values())} indexed, "
          f"{sum(d['status'] == 'failed' for d in settled.values())} failed with a reason")


FORMAT_SAMPLES = {
    "notes.txt": "Plain text notes. The okapi is a giraffid native to the Congo rainforest.\n" * 20,
    "guide.md": "# Okapi field guide\n\nThe **okapi** is a giraffid native to the Congo rainforest.\n" * 20,
    "page.html": "<!doctype html><html><body><h1>Okapi</h1>"
    + "<p>The okapi is a giraffid native to the Congo rainforest.</p>" * 20
    + "</body></html>",
}


def test_text_markdown_html_and_docx_uploads_are_indexed_and_searchable(pipeline: Pipeline) -> None:
    identity = new_identity()
    uploads = {name: text.encode() for name, text in FORMAT_SAMPLES.items()}
    uploads["report.docx"] = docx(["The okapi is a giraffid native to the Congo rainforest."] * 20)
    ids = {}
    for name, data in uploads.items():
        response = pipeline.upload(identity, Path(name), data)
        assert response.status_code == 202, (name, response.text)
        ids[name] = response.json()["id"]
    settled = pipeline.wait_settled(identity, ids.values())
    for name, document_id in ids.items():
        document = settled[document_id]
        assert document["status"] == "indexed" and document["chunks"] > 0, (name, document)
    types = {name: settled[i]["content_type"] for name, i in ids.items()}
    assert types == {
        "notes.txt": "text/plain",
        "guide.md": "text/markdown",
        "page.html": "text/html",
        "report.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }
    found = httpx.post(
        f"http://127.0.0.1:{pipeline.services['query'].port}/v1/search",
        json={"query": "okapi giraffid Congo rainforest", "top_k": 20},
        headers=pipeline.headers(identity),
        timeout=30,
    ).json()["results"]
    assert {r["document_id"] for r in found} == set(ids.values())
