"""The chunker's settings, built once with ``load_settings(ChunkerSettings)``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from vectrion_common.settings import ServiceSettings
from vectrion_common.storage import StorageSettings

# "auto": OCR PDF pages without a text layer when this machine has tesseract (see extraction.ocr_pages).
OcrMode = Literal["off", "auto"]


class ChunkerSettings(ServiceSettings):
    service_name: ClassVar[str] = "chunker"

    storage: StorageSettings = Field(default_factory=StorageSettings)

    # Extraction is CPU-bound and one message is a whole document: take few at a time.
    broker_prefetch: int = 2
    # 10, as the embedder's ingestion encodes: the two background stages share the cores evenly and
    # every normal-priority step (query embeddings, scans, indexing, the outbox relays) goes first.
    # bench/ingest, one run each on the same machine: 6.21 pages/s at 10/10, 5.19 at 5/5.
    extract_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="niceness of the extraction threads: query embeddings (normal priority) win the CPU during "
        "an ingestion backlog; 0 keeps the default priority",
    )

    chunk_max_chars: int = Field(default=1000, ge=100)
    chunk_overlap_chars: int = Field(default=150, ge=0)
    chunk_min_chars: int = Field(
        default=200, ge=0, description="a title does not start a new chunk while the current one is shorter"
    )
    # Chunks per embedding.requested.v1. The embedder sorts one message's texts by length before
    # batching them through the model, so bigger messages waste less on padding (measured on the
    # shared PDFs: 1.48x the real tokens computed at 32, 1.22x at 128) and mean fewer messages.
    embedding_batch_size: int = Field(default=128, ge=1, le=256)
    extract_window_pages: int = Field(
        default=32,
        ge=0,
        description="PDF pages extracted, chunked, stored and sent to embedding at a time: the embedder works "
        "on a long document's first windows while later ones are extracted. 0: the whole document at once",
    )
    # Indirect-injection scan of every chunk by guardrails ("off" only for tests of chunking alone).
    chunk_scan: Literal["rpc", "off"] = "rpc"
    chunk_scan_timeout_seconds: float = Field(default=10.0, gt=0)
    ocr: OcrMode = Field(
        default="off",
        description="'auto': OCR (tesseract) PDF pages that have no text layer, up to ocr_max_pages per document; "
        "without tesseract it logs why at start-up. Pages still without text count in pages_without_text",
    )
    ocr_max_pages: int = Field(default=50, ge=1, description="OCR is ~1.3 s a page on one core: a bound per document")

    @model_validator(mode="after")
    def _overlap_leaves_room(self) -> ChunkerSettings:
        if self.chunk_overlap_chars * 2 > self.chunk_max_chars:
            raise ValueError("chunk_overlap_chars must be at most half of chunk_max_chars")
        return self
