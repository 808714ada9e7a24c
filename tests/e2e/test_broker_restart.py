"""RabbitMQ stopped and started while documents are being uploaded and ingested: every upload
that was accepted (202) ends indexed. The broker is a node of this test's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.pipeline import Pipeline, new_identity, start_pipeline, stop_pipeline
from tests.e2e.private_broker import PrivateBroker, private_rabbitmq
from tests.harness import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PDFS = SHARED_DATA / "pdfs"
FILES = [
    PDFS / "docling_multi_page.pdf",
    PDFS / "pypdfsamples_pdflatex-4-pages.pdf",
    PDFS / "pypdfsamples_multicolumn.pdf",
    PDFS / "pypdfsamples_crazyones-pdfa.pdf",
    PDFS / "docling_2305.03393v1-pg9.pdf",
    PDFS / "pdfplumber_senate-expenditures.pdf",
]
OUTAGE_SECONDS = 3.0


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateBroker]:
    with private_rabbitmq() as node:
        yield node


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, broker_namespace: str, broker: PrivateBroker
) -> Iterator[Pipeline]:
    running = start_pipeline(tmp_path_factory.mktemp("restart"), f"{broker_namespace}b", rabbitmq_url=broker.url)
    try:
        yield running
    finally:
        stop_pipeline(running, shared_broker=False)  # its queues go with the private node


def test_no_accepted_upload_is_lost_when_rabbitmq_restarts_during_ingestion(
    pipeline: Pipeline, broker: PrivateBroker
) -> None:
    identity = new_identity()
    accepted: list[str] = []
    refused: list[int] = []

    def upload_all() -> None:
        for path in FILES * 2:
            data = path.read_bytes() + f"\n% copy {len(accepted) + len(refused)}\n".encode()  # distinct bytes
            response = pipeline.upload(identity, path, data)
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            else:
                refused.append(response.status_code)
            time.sleep(0.2)

    uploader = threading.Thread(target=upload_all)
    uploader.start()
    time.sleep(1.0)  # some documents in flight
    try:
        broker.stop_app()
        time.sleep(OUTAGE_SECONDS)
    finally:
        broker.start_app()  # whatever happened above, the broker comes back
    uploader.join(timeout=120)
    assert not uploader.is_alive()

    assert len(accepted) + len(refused) == len(FILES) * 2
    assert all(status < 500 or status == 503 for status in refused), refused
    settled = pipeline.wait_settled(identity, accepted, timeout=240)
    assert {d["status"] for d in settled.values()} == {"indexed"}, settled
    print(f"\nbroker restart: {len(accepted)} uploads accepted, all indexed; refused: {refused}")
