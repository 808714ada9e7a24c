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
    answerer: Literal["extractive", "llm"] = Field(
        default="extractive",
        description="llm = an OpenAI-compatible endpoint (llm_base_url); the extractive answerer stays its fallback",
    )

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
    answer_min_relevance: float = Field(
        default=0.2,
        description="'I don't know' threshold: below this best dense similarity nothing is answered or cited",
    )

    # --- retrieval mode -----------------------------------------------------------
    retrieval_mode: Literal["dense", "bm25", "hybrid"] = Field(
        default="hybrid", description="hybrid = dense + BM25 fused by reciprocal rank fusion (measured: bench/)"
    )
    rrf_k: int = Field(default=60, description="reciprocal rank fusion constant: score = sum 1/(k + rank)")
    hybrid_candidates: int = Field(default=100, description="candidates taken from each ranker before fusion")

    # --- LLM provider (OpenAI-compatible chat completions: OpenAI, vLLM, Ollama, LiteLLM) ---
    llm_base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:11434/v1 (Ollama)")
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_connect_timeout_seconds: float = 2.0
    llm_read_timeout_seconds: float = 15.0
    llm_max_retries: int = Field(
        default=2, description="extra attempts on 429/5xx/timeouts (never after streamed text went out)"
    )
    llm_backoff_base_seconds: float = 0.2
    llm_backoff_max_seconds: float = 4.0
    llm_max_concurrency: int = Field(default=8, description="calls in flight to the provider from this process")
    llm_breaker_failures: int = Field(default=5, description="consecutive failures that open the circuit")
    llm_breaker_reset_seconds: float = Field(default=30.0, description="open circuit: time before one trial call")
    llm_max_completion_tokens: int = 512
    llm_temperature: float = 0.0
    llm_rewrite_followups: bool = Field(default=True, description="rewrite follow-ups with the LLM when configured")

    # --- prompt, memory, deadline -------------------------------------------------
    prompt_context_tokens: int = Field(default=2000, description="token budget for retrieved text in the prompt")
    memory_messages: int = Field(default=6, description="last N messages of a conversation used as memory")
    request_deadline_seconds: float = Field(
        default=30.0, description="whole /v1/query budget; the LLM gets what is left after retrieval"
    )
