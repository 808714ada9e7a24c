"""The embedder's settings, built once with ``load_settings(EmbedderSettings)``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vectrion_common.settings import ServiceSettings


class EmbedderSettings(ServiceSettings):
    service_name: ClassVar[str] = "embedder"

    # A batch message takes about a second of CPU: keep the in-flight window small so
    # other replicas can take the backlog. Query RPCs use their own channel (rpc_prefetch).
    broker_prefetch: int = 2
    rpc_prefetch: int = 16

    embedder_backend: Literal["sentence-transformers"] = "sentence-transformers"
    model_device: str = "cpu"
    encode_batch_size: int = Field(default=32, ge=1, le=512)
    ingest_encode_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="niceness of the thread encoding ingestion batches: query-embedding RPCs (normal priority) "
        "win the CPU while a backlog is embedded (bench/ingest: RPC p95 within 2x of idle); 0 = off",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch intra-op threads; None keeps torch's default"
    )
