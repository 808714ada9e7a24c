"""The LLM answerer (OpenAI-compatible provider) with the extractive answerer as its fallback.

Whatever the provider does -- slow, 429, 5xx, nonsense, a stream cut in the
middle, an open circuit -- the caller gets a draft: the LLM's when it answered,
else the extractive one with ``fallback_reason`` set (the response says which
answered). Citations the model invents (``[7]`` with five sources) are dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from vectrion_common.logs import get_logger
from vectrion_query.answering import AnswerContext, AnswerDraft, Answerer, ExtractiveAnswerer, make_extractive_answerer
from vectrion_query.llm_client import (
    CircuitBreaker,
    Deadline,
    LLMError,
    OpenAIChatClient,
    StreamDelta,
    StreamEnd,
)
from vectrion_query.memory import Turn, as_transcript, heuristic_standalone
from vectrion_query.prompting import NOT_FOUND_REPLY, Prompt, build_prompt, resolve_citations, rewrite_messages
from vectrion_query.retrieval import RetrievedChunk
from vectrion_query.settings import QuerySettings
from vectrion_query.tokens import TokenCounter

log = get_logger(__name__)

REWRITE_MAX_TOKENS = 96
REWRITE_SHARE_OF_DEADLINE = 0.25


class LLMAnswerer:
    name = "llm"

    def __init__(
        self,
        client: OpenAIChatClient,
        fallback: ExtractiveAnswerer,
        tokens: TokenCounter,
        *,
        context_tokens: int,
        max_tokens: int,
    ) -> None:
        self._client = client
        self._fallback = fallback
        self._tokens = tokens
        self._context_tokens = context_tokens
        self._max_tokens = max_tokens

    def _prompt(self, question: str, chunks: Sequence[RetrievedChunk], context: AnswerContext) -> Prompt:
        return build_prompt(
            question,
            chunks,
            tokens=self._tokens,
            context_tokens=self._context_tokens,
            canary=context.canary,
            history=context.history,
        )

    def _fallback_draft(self, question: str, chunks: Sequence[RetrievedChunk], exc: LLMError) -> AnswerDraft:
        log.warning("llm.fallback_extractive", reason=exc.reason, error=str(exc))
        draft = self._fallback.answer_now(question, chunks)
        return AnswerDraft(
            text=draft.text,
            citations=draft.citations,
            found=draft.found,
            answerer="extractive",
            fallback_reason=f"{exc.reason}: {exc}",
        )

    def _llm_draft(
        self, text: str, prompt: Prompt, model: str, prompt_tokens: int | None, completion_tokens: int | None
    ) -> AnswerDraft:
        cited = resolve_citations(text, prompt.sources)
        if cited.invented:
            log.warning("llm.invented_citations_dropped", numbers=cited.invented, sources=len(prompt.sources))
        found = bool(cited.citations) and not cited.text.startswith(NOT_FOUND_REPLY[:12])
        return AnswerDraft(
            text=cited.text,
            citations=cited.citations if found else [],
            found=found,
            answerer="llm",
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            prompt_version=prompt.version,
            invented_citations=len(cited.invented),
        )

    async def answer(
        self, question: str, chunks: Sequence[RetrievedChunk], context: AnswerContext | None = None
    ) -> AnswerDraft:
        context = context or AnswerContext()
        prompt = self._prompt(question, chunks, context)
        try:
            result = await self._client.complete(
                prompt.messages, max_tokens=self._max_tokens, deadline=Deadline(context.deadline_seconds)
            )
        except LLMError as exc:
            return self._fallback_draft(question, chunks, exc)
        return self._llm_draft(result.text, prompt, result.model, result.prompt_tokens, result.completion_tokens)

    async def stream(
        self, question: str, chunks: Sequence[RetrievedChunk], context: AnswerContext | None = None
    ) -> AsyncIterator[str | AnswerDraft]:
        """Text deltas as the provider sends them, then the final draft (which is authoritative)."""
        context = context or AnswerContext()
        prompt = self._prompt(question, chunks, context)
        parts: list[str] = []
        end: StreamEnd | None = None
        try:
            async for item in self._client.stream(
                prompt.messages, max_tokens=self._max_tokens, deadline=Deadline(context.deadline_seconds)
            ):
                if isinstance(item, StreamDelta):
                    parts.append(item.text)
                    yield item.text
                else:
                    end = item
        except LLMError as exc:
            yield self._fallback_draft(question, chunks, exc)
            return
        assert end is not None  # the client always ends a complete stream with StreamEnd
        yield self._llm_draft("".join(parts), prompt, end.model, end.prompt_tokens, end.completion_tokens)


async def stream_answer(
    answerer: Answerer, question: str, chunks: Sequence[RetrievedChunk], context: AnswerContext
) -> AsyncIterator[str | AnswerDraft]:
    """Stream from answerers that can; others produce one final draft."""
    if isinstance(answerer, LLMAnswerer):
        async for item in answerer.stream(question, chunks, context):
            yield item
        return
    yield await answerer.answer(question, chunks, context)


@dataclass(frozen=True, slots=True)
class Standalone:
    question: str
    method: str  # "none" | "heuristic" | "llm"


class FollowUpRewriter:
    """Turns a follow-up into a standalone question: the LLM when configured, else (or on failure) the heuristic."""

    def __init__(self, client: OpenAIChatClient | None) -> None:
        self._client = client

    def is_local(self, history: Sequence[Turn]) -> bool:
        """True when :meth:`standalone` would not send anything to the LLM (no history, or no LLM)."""
        return not history or self._client is None

    async def standalone(self, question: str, history: Sequence[Turn], deadline_seconds: float) -> Standalone:
        if not history:
            return Standalone(question, "none")
        if self._client is not None:
            try:
                result = await self._client.complete(
                    rewrite_messages(as_transcript(history), question),
                    max_tokens=REWRITE_MAX_TOKENS,
                    deadline=Deadline(deadline_seconds * REWRITE_SHARE_OF_DEADLINE),
                )
                rewritten = " ".join(result.text.split())
                if rewritten:
                    return Standalone(rewritten[:2000], "llm")
            except LLMError as exc:
                log.warning("llm.rewrite_failed", reason=exc.reason)
        rewritten = heuristic_standalone(question, history)
        return Standalone(rewritten, "heuristic" if rewritten != question else "none")


def make_llm_client(settings: QuerySettings) -> OpenAIChatClient | None:
    if settings.answerer != "llm":
        return None
    if not settings.llm_base_url:
        raise ValueError("VECTRION_ANSWERER=llm needs VECTRION_LLM_BASE_URL (an OpenAI-compatible /v1 endpoint)")
    return OpenAIChatClient(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        model=settings.llm_model,
        connect_timeout=settings.llm_connect_timeout_seconds,
        read_timeout=settings.llm_read_timeout_seconds,
        max_retries=settings.llm_max_retries,
        backoff_base=settings.llm_backoff_base_seconds,
        backoff_max=settings.llm_backoff_max_seconds,
        max_concurrency=settings.llm_max_concurrency,
        breaker=CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_reset_seconds),
        temperature=settings.llm_temperature,
    )


def make_answerer(settings: QuerySettings, tokens: TokenCounter, client: OpenAIChatClient | None) -> Answerer:
    extractive = make_extractive_answerer(settings)
    match settings.answerer:
        case "extractive":
            return extractive
        case "llm":
            if client is None:
                raise ValueError("the llm answerer needs an LLM client")
            return LLMAnswerer(
                client,
                extractive,
                tokens,
                context_tokens=settings.prompt_context_tokens,
                max_tokens=settings.llm_max_completion_tokens,
            )
