"""The embedder's settings, built once with ``load_settings(EmbedderSettings)``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vectrion_common.settings import ServiceSettings


class EmbedderSettings(ServiceSettings):
    service_name: ClassVar[str] = "embedder"

    # Messages waiting while one encodes are merged into the next encode (less padding, see
    # coalescing.py), so the window holds a few; small enough that other replicas still take
    # the backlog. Query RPCs use their own channel (rpc_prefetch).
    broker_prefetch: int = 4
    rpc_prefetch: int = 16

    embedder_backend: Literal["sentence-transformers"] = "sentence-transformers"
    model_device: str = "cpu"
    encode_batch_size: int = Field(default=32, ge=1, le=512)
    coalesce_max_texts: int = Field(
        default=512, ge=1, description="most texts of queued ingestion messages merged into one encode call"
    )
    # 10, as the chunker's extraction (see its extract_nice): evenly niced background stages.
    ingest_encode_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="niceness of the thread encoding ingestion batches: query-embedding RPCs (normal priority) "
        "win the CPU while a backlog is embedded (bench/ingest: RPC p95 within 2x of idle); 0 = off",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch intra-op threads; None keeps torch's default"
    )
