"""kill -9 of the chunker, the embedder and the query consumer in the middle of work, ten times
each: afterwards every document is indexed once, with chunks == read-model rows == Qdrant points.
The chunker streams in windows of 2 pages here, so it is also killed between two windows of a
document (``chunker-window``): some of its batches stored and sent, the rest not yet."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from tests.e2e.pipeline import Pipeline, document_counts, new_identity, qdrant_points, start_pipeline, stop_pipeline
from tests.harness import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PDFS = SHARED_DATA / "pdfs"
BATCH = [
    PDFS / "docling_multi_page.pdf",
    PDFS / "pypdfsamples_pdflatex-4-pages.pdf",
    PDFS / "pypdfsamples_multicolumn.pdf",
]
RUNS = 10
# The log event each target writes when it finished one unit of work: kill it right after one.
PROGRESS = {
    "chunker": "chunker.document_chunked",
    "chunker-window": "chunker.window_stored",
    "embedder": "embedder.batch_embedded",
    "query": "chunks.indexed",
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, broker_namespace: str) -> Iterator[Pipeline]:
    running = start_pipeline(
        tmp_path_factory.mktemp("crash"),
        f"{broker_namespace}c",
        # Small embedding batches: each document is several messages for the embedder and query.
        extra_env={"VECTRION_EMBEDDING_BATCH_SIZE": "8", "VECTRION_EXTRACT_WINDOW_PAGES": "2"},
    )
    try:
        yield running
    finally:
        stop_pipeline(running)


def _service(target: str) -> str:
    return target.split("-", 1)[0]


def _wait_for_progress(pipeline: Pipeline, target: str, seen: int, timeout: float = 60) -> None:
    service = pipeline.services[_service(target)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(service.events(PROGRESS[target])) > seen:
            return
        time.sleep(0.02)
    raise AssertionError(f"{target} made no progress in {timeout}s:\n{service.log_tail()}")


@pytest.mark.parametrize("target", ["chunker", "chunker-window", "embedder", "query"])
def test_kill_9_mid_work_loses_nothing_and_duplicates_nothing(pipeline: Pipeline, target: str) -> None:
    service = pipeline.services[_service(target)]
    rng = random.Random(target)
    document_ids: list[str] = []
    busy_at_kill = 0
    started = time.monotonic()
    for _ in range(RUNS):
        identity = new_identity()  # a new tenant each run: the same bytes are not deduplicated
        seen = len(service.events(PROGRESS[target]))
        ids = []
        for path in BATCH:
            response = pipeline.upload(identity, path)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        _wait_for_progress(pipeline, target, seen)
        time.sleep(rng.uniform(0, 0.3))
        pending = sum(pipeline.document(identity, d)["status"] != "indexed" for d in ids)
        service.kill9()
        busy_at_kill += pending > 0
        service.start()
        service.wait_ready()
        settled = pipeline.wait_settled(identity, ids, timeout=120)
        assert {d["status"] for d in settled.values()} == {"indexed"}, settled
        document_ids += ids

    counts = asyncio.run(document_counts(pipeline, document_ids))
    points = qdrant_points(pipeline, document_ids)
    for document_id in document_ids:
        row = counts[document_id]
        assert row["status"] == "indexed" and row["generation"] == 1 and row["attempts"] == 1, row
        assert row["chunks"] > 0
        assert row["chunks"] == row["chunker_rows"] == row["chunker_all"], row
        assert row["chunks"] == row["read_model_rows"] == row["read_model_all"], row
        assert points[document_id] == row["chunks"], (document_id, points[document_id], row)
    # The kills have to land while there is work left, or this test proves nothing.
    assert busy_at_kill >= RUNS - 2, busy_at_kill
    print(
        f"\n{target}: {RUNS} kill -9 runs, {busy_at_kill} with documents still in flight, "
        f"{len(document_ids)} documents indexed exactly once, {time.monotonic() - started:.0f}s"
    )
