"""HTTP request and response bodies of the query API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from vectrion_common.contracts import GuardrailVerdict

MAX_TOP_K = 50


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)


class SearchResult(BaseModel):
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    page: int | None
    score: float
    text: str
    filename: str


class SearchResponse(BaseModel):
    results: list[SearchResult]


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    conversation_id: uuid.UUID | None = None
    stream: bool = False


class CitationOut(BaseModel):
    document_id: uuid.UUID
    filename: str
    page: int | None
    chunk_id: uuid.UUID
    quote: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class VerdictSummary(BaseModel):
    allowed: bool
    action: str
    categories: list[str]
    policy_version: str

    @classmethod
    def of(cls, verdict: GuardrailVerdict) -> VerdictSummary:
        return cls(
            allowed=verdict.allowed,
            action=verdict.action,
            categories=verdict.categories,
            policy_version=verdict.policy_version,
        )


class GuardrailsOut(BaseModel):
    input: VerdictSummary
    output: VerdictSummary


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationOut]
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    usage: Usage
    guardrails: GuardrailsOut
    answerer: str = Field(description="who wrote the answer: llm | extractive (also when standing in for the LLM)")
    model: str | None = None
    fallback_reason: str | None = Field(
        default=None, description="set when the LLM failed and the extractive answerer answered instead"
    )
    standalone_question: str | None = Field(
        default=None, description="the question retrieval used (a follow-up rewritten with the conversation)"
    )


class ConversationOut(BaseModel):
    id: uuid.UUID
    title: str
    created_at: datetime
    message_count: int


class ConversationList(BaseModel):
    conversations: list[ConversationOut]


class MessageOut(BaseModel):
    id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    citations: list[dict[str, Any]]
    answerer: str | None
    created_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


# --- OpenAI-compatible chat completions (model ``vectrion-rag``) -----------------------

RAG_MODEL = "vectrion-rag"


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    # OpenAI allows a list of content parts; we read the text parts.
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return " ".join(str(p.get("text", "")) for p in self.content or [] if p.get("type") == "text")


class ChatCompletionRequest(BaseModel):
    """The subset of the OpenAI request we honour; other fields (temperature, ...) are accepted and ignored."""

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    stream: bool = False

    model_config = {"extra": "allow"}
