"""Settings of the query service: built once at start-up by :func:`load_settings`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from vectrion_common.settings import ServiceSettings


class QuerySettings(ServiceSettings):
    service_name: ClassVar[str] = "query"

    # Field names still work as constructor arguments next to the env aliases below.
    model_config = SettingsConfigDict(populate_by_name=True)

    # --- seams: one factory per seam matches on these -------------------------
    vector_store: Literal["qdrant"] = "qdrant"
    query_embedder: Literal["rpc"] = "rpc"
    guardrails: Literal["rpc"] = "rpc"
    answerer: Literal["extractive"] = "extractive"

    # --- vector store ----------------------------------------------------------
    qdrant_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VECTRION_QDRANT_URL", "QDRANT_URL", "qdrant_url"),
        description="Qdrant server; unset = embedded local mode at qdrant_path (one process only)",
    )
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path = Path("var/qdrant")
    qdrant_collection: str = "chunks"
    embedding_dimension: int = Field(default=384, description="the embedder's model dimension (all-MiniLM-L6-v2)")

    # --- RPC to sibling services -------------------------------------------------
    embed_timeout_seconds: float = 5.0
    guardrails_timeout_seconds: float = 3.0
    query_vector_cache_size: int = 1024

    # --- retrieval and answering ------------------------------------------------
    max_chunks_per_page: int = Field(default=2, description="diversity: at most this many results from one page")
    answer_top_k: int = Field(default=5, description="chunks retrieved to answer a question")
    answer_max_sentences: int = 3
    answer_min_score: float = Field(
        default=0.3, description="below this sentence score the answer is 'not in your documents'"
    )
