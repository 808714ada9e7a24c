"""Answering a question: memory -> input policy || retrieve -> answer -> output policy -> record.

The input check runs concurrently with the lookup (embed, rank, fetch, scan of
the retrieved chunks) unless an LLM would rewrite the question first. The lookup
writes nothing (only the in-memory query-vector cache may keep its vector) and
its result is used only once the check passed: a blocked question is refused
with nothing of it and nothing is stored; a redacted one is looked up again with
the redacted text. Sessions are held only to read or write the database, never
across RPC, vector search or the LLM.
One :class:`Deadline` (``request_deadline_seconds``) covers the whole request;
the LLM gets what is left minus a reserve for the output check, so a slow
provider turns into an extractive fallback answer in time, never a hung request.

Streaming: text deltas are released only after the output policy has allowed
everything up to them (checked at sentence boundaries); the final ``answer``
event is authoritative (it may replace the deltas when the LLM failed mid-stream
or the policy redacted/blocked the rest).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import GuardrailVerdict
from vectrion_common.db import unit_of_work
from vectrion_common.identity import Identity
from vectrion_common.logs import get_logger
from vectrion_common.problems import NotFound
from vectrion_query import repository
from vectrion_query.access import AccessScope, access_scope
from vectrion_query.answering import NOT_FOUND_ANSWER, AnswerContext, AnswerDraft, Answerer, Citation
from vectrion_query.errors import GuardrailBlocked
from vectrion_query.guardrails import Guardrails
from vectrion_query.llm_answering import FollowUpRewriter, Standalone, stream_answer
from vectrion_query.llm_client import Deadline
from vectrion_query.memory import Turn
from vectrion_query.prompting import NOT_FOUND_REPLY, new_canary
from vectrion_query.retrieval import Retrieval, RetrievedChunk, Retriever
from vectrion_query.schemas import CitationOut, GuardrailsOut, QueryResponse, Usage, VerdictSummary
from vectrion_query.tokens import TokenCounter

log = get_logger(__name__)

WITHHELD_ANSWER = "The answer was withheld by the output policy."
TITLE_LENGTH = 80
OUTPUT_CHECK_RESERVE_S = 0.2  # on top of the guardrails timeout, for storing and answering
# Earlier user turns sent with the input check, so an attack split across turns is read whole.
HISTORY_TURNS = 3
_RELEASE_POINT = re.compile(r"[.!?:;\n]\s*$|[.!?]\s")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _blocks(verdict: GuardrailVerdict) -> bool:
    return not verdict.allowed or verdict.action == "block"


def _passes(verdict: GuardrailVerdict) -> bool:
    return verdict.allowed and verdict.action in ("allow", "warn")


def apply_output_verdict(draft: AnswerDraft, verdict: GuardrailVerdict) -> AnswerDraft:
    """What the caller may see of the draft after the output check."""
    if _blocks(verdict):
        return AnswerDraft(
            text=WITHHELD_ANSWER,
            citations=[],
            found=False,
            answerer=draft.answerer,
            model=draft.model,
            prompt_tokens=draft.prompt_tokens,
            completion_tokens=draft.completion_tokens,
            fallback_reason=draft.fallback_reason,
            prompt_version=draft.prompt_version,
        )
    if verdict.action == "redact" and verdict.redacted_text is not None:
        # The quotes are the redacted material itself: keep where it came from, drop the quoted text.
        return AnswerDraft(
            text=verdict.redacted_text,
            citations=[
                Citation(c.document_id, c.filename, c.page, c.chunk_id, quote="[redacted]") for c in draft.citations
            ],
            found=draft.found,
            answerer=draft.answerer,
            model=draft.model,
            prompt_tokens=draft.prompt_tokens,
            completion_tokens=draft.completion_tokens,
            fallback_reason=draft.fallback_reason,
            prompt_version=draft.prompt_version,
        )
    return draft


def _citation_out(c: Citation) -> CitationOut:
    return CitationOut(document_id=c.document_id, filename=c.filename, page=c.page, chunk_id=c.chunk_id, quote=c.quote)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything decided before an answer is drafted."""

    identity: Identity
    scope: AccessScope
    effective: str  # the question after the input policy
    standalone: Standalone
    history: list[Turn]
    retrieval: Retrieval
    usable: list[RetrievedChunk]  # retrieved minus quarantined (indirect prompt injection)
    quarantined: list[dict[str, Any]]
    scan_ms: float
    verdict_in: GuardrailVerdict
    guard_in_ms: float
    rewrite_ms: float
    conversation_id: uuid.UUID | None
    deadline: Deadline
    canary: str
    started: float
    relevant: bool  # False: the "I don't know" threshold was not met, nothing is answered


@dataclass(frozen=True, slots=True)
class _Lookup:
    standalone: Standalone
    retrieval: Retrieval
    scanned: dict[uuid.UUID, GuardrailVerdict]  # query-time scans of the chunks not scanned at ingestion
    scan_ms: float
    rewrite_ms: float


async def _discard(lookup: asyncio.Task[_Lookup] | None) -> None:
    """Let a lookup whose result will not be used end (not cancelled mid-query: the pooled
    connection and the RPC channel stay clean), and drop its result or error."""
    if lookup is None:
        return
    try:
        await asyncio.shield(lookup)
    except asyncio.CancelledError:
        lookup.cancel()
        raise
    except Exception as exc:  # its error is not this request's answer
        log.debug("query.lookup_discarded", error=type(exc).__name__)


@dataclass(frozen=True, slots=True)
class StreamDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamFinal:
    response: QueryResponse
    replaces_deltas: bool  # the deltas sent so far are not a prefix of the final answer


@dataclass(frozen=True, slots=True)
class QuestionService:
    retriever: Retriever
    guardrails: Guardrails
    answerer: Answerer
    tokens: TokenCounter
    sessions: async_sessionmaker[AsyncSession]
    top_k: int
    rewriter: FollowUpRewriter
    memory_messages: int = 6
    deadline_seconds: float = 30.0
    min_relevance: float = 0.2
    guardrails_timeout_seconds: float = 3.0

    # --- phases --------------------------------------------------------------------

    async def _prepare(
        self,
        identity: Identity,
        question: str,
        conversation_id: uuid.UUID | None,
        history: Sequence[Turn] | None,
    ) -> Prepared:
        total_started = time.perf_counter()
        deadline = Deadline(self.deadline_seconds)
        scope = access_scope(identity)
        turns: list[Turn] = list(history or [])
        asked_before = [t.content for t in turns if t.role == "user"][-HISTORY_TURNS:]
        if conversation_id is not None:
            async with self.sessions() as session:
                if not await repository.conversation_exists(session, conversation_id, scope):
                    raise NotFound(f"conversation {conversation_id} not found")
                recent = await repository.recent_turns(session, conversation_id, scope, self.memory_messages)
                asked_before = await repository.recent_user_turns(session, conversation_id, HISTORY_TURNS)
            turns = [Turn(role, content) for role, content in recent]
        turns = turns[-self.memory_messages :] if self.memory_messages > 0 else []

        # The input check runs while the question is embedded, ranked, fetched and its chunks scanned
        # (when no LLM would see the question for a follow-up rewrite: an unchecked question never
        # reaches a model). Nothing of that lookup is used, returned or stored unless the check passes;
        # a blocked question waits for the lookup to end and then is refused with nothing of it.
        lookup: asyncio.Task[_Lookup] | None = None
        if self.rewriter.is_local(turns):
            lookup = asyncio.create_task(self._lookup(question, turns, scope, identity, deadline))
        started = time.perf_counter()
        try:
            verdict_in = await self.guardrails.check(question, "input", identity.tenant_id, asked_before)
        except BaseException:
            await _discard(lookup)
            raise
        guard_in_ms = _ms(started)
        if _blocks(verdict_in):
            await _discard(lookup)
            log.info("query.input_blocked", categories=verdict_in.categories, rules=verdict_in.rule_ids)
            raise GuardrailBlocked(
                "the question was refused by the input policy",
                categories=verdict_in.categories,
                policy_version=verdict_in.policy_version,
            )
        # A redacting input policy wins everywhere downstream: retrieval, answer and what we store.
        effective = verdict_in.redacted_text if verdict_in.action == "redact" and verdict_in.redacted_text else question
        if lookup is not None and effective != question:
            await _discard(lookup)  # looked up with the unredacted text: look up again with the redacted one
            lookup = None
        found = await lookup if lookup is not None else await self._lookup(effective, turns, scope, identity, deadline)
        standalone, retrieval = found.standalone, found.retrieval
        started = time.perf_counter()
        usable, quarantined = await self._quarantine(
            retrieval.chunks, found.scanned, verdict_in.policy_version, identity.tenant_id
        )
        scan_ms, rewrite_ms = round(found.scan_ms + _ms(started), 2), found.rewrite_ms
        relevant = bool(usable) and (
            retrieval.best_dense_score is None or retrieval.best_dense_score >= self.min_relevance
        )
        return Prepared(
            identity=identity,
            scope=scope,
            effective=effective,
            standalone=standalone,
            history=turns,
            retrieval=retrieval,
            usable=usable,
            quarantined=quarantined,
            scan_ms=scan_ms,
            verdict_in=verdict_in,
            guard_in_ms=guard_in_ms,
            rewrite_ms=rewrite_ms,
            conversation_id=conversation_id,
            deadline=deadline,
            canary=new_canary(),
            started=total_started,
            relevant=relevant,
        )

    async def _lookup(
        self, question: str, turns: list[Turn], scope: AccessScope, identity: Identity, deadline: Deadline
    ) -> _Lookup:
        """Standalone question -> retrieval -> scan of the retrieved chunks that were not scanned at
        ingestion (no side effects)."""
        started = time.perf_counter()
        standalone = await self.rewriter.standalone(question, turns, deadline.remaining())
        rewrite_ms = _ms(started)
        retrieval = await self.retriever.retrieve(standalone.question, scope, self.top_k)
        started = time.perf_counter()
        unscanned = [c for c in retrieval.chunks if c.ingestion_verdict is None]
        scanned = await self._scan(unscanned, identity.tenant_id)
        return _Lookup(standalone, retrieval, scanned, _ms(started), rewrite_ms)

    def _context(self, prepared: Prepared) -> AnswerContext:
        budget = prepared.deadline.remaining() - self.guardrails_timeout_seconds - OUTPUT_CHECK_RESERVE_S
        return AnswerContext(
            history=[(t.role, t.content) for t in prepared.history],
            deadline_seconds=max(budget, 0.0),
            canary=prepared.canary,
        )

    def _not_found(self) -> AnswerDraft:
        text = NOT_FOUND_ANSWER if self.answerer.name == "extractive" else NOT_FOUND_REPLY
        return AnswerDraft(text=text, citations=[], found=False, answerer=self.answerer.name)

    async def _finish(self, prepared: Prepared, draft: AnswerDraft, answer_ms: float) -> QueryResponse:
        identity, retrieval = prepared.identity, prepared.retrieval
        started = time.perf_counter()
        verdict_out = await self.guardrails.check(draft.text, "output", identity.tenant_id, canary=prepared.canary)
        guard_out_ms = _ms(started)
        final = apply_output_verdict(draft, verdict_out)
        if _blocks(verdict_out):
            log.warning("query.output_blocked", categories=verdict_out.categories, rules=verdict_out.rule_ids)

        chunks = prepared.usable if prepared.relevant else []
        if final.prompt_tokens is not None and final.completion_tokens is not None:
            usage = Usage(prompt_tokens=final.prompt_tokens, completion_tokens=final.completion_tokens)
            usage_source = "provider usage"
        else:
            # Counted: the "prompt" is what was read (question + retrieved chunks), the completion what was said.
            # Chunks were counted when indexed; rows from before that are counted now.
            uncounted = [c.text for c in chunks if c.token_count is None]
            question_tokens, answer_tokens, *late = self.tokens.count_many(
                [prepared.standalone.question, final.text, *uncounted]
            )
            usage = Usage(
                prompt_tokens=question_tokens + sum(c.token_count or 0 for c in chunks) + sum(late),
                completion_tokens=answer_tokens,
            )
            usage_source = self.tokens.source
        latency = {
            **retrieval.latency_ms,
            "rewrite": prepared.rewrite_ms,
            "answer": answer_ms,
            "llm": answer_ms if draft.answerer == "llm" or draft.fallback_reason else 0.0,
            "guardrails_input": prepared.guard_in_ms,
            "guardrails_chunks": prepared.scan_ms,
            "guardrails_output": guard_out_ms,
            "guardrails": round(prepared.guard_in_ms + prepared.scan_ms + guard_out_ms, 2),
        }
        guardrails = GuardrailsOut(input=VerdictSummary.of(prepared.verdict_in), output=VerdictSummary.of(verdict_out))
        citations = [_citation_out(c) for c in final.citations]
        message_id = uuid.uuid4()
        new_conversation = prepared.conversation_id is None
        conversation_id = prepared.conversation_id or uuid.uuid4()
        model = final.model or ("extractive" if final.answerer == "extractive" else None)
        provider = "openai-compatible" if final.answerer == "llm" else "builtin"
        latency["total"] = _ms(prepared.started)

        # One INSERT (conversation row, when new, in a CTE of the same statement) in one transaction.
        async with unit_of_work(self.sessions) as session:
            await repository.add_messages(
                session,
                [
                    {
                        "id": uuid.uuid4(),
                        "conversation_id": conversation_id,
                        "role": "user",
                        "content": prepared.effective,
                        "standalone_question": prepared.standalone.question,
                    },
                    {
                        "id": message_id,
                        "conversation_id": conversation_id,
                        "role": "assistant",
                        "content": final.text,
                        "citations": [c.model_dump(mode="json") for c in citations],
                        "retrieved": [
                            {
                                "chunk_id": str(c.chunk_id),
                                "score": c.score,
                                "rank": rank,
                                "quarantined": any(q["chunk_id"] == str(c.chunk_id) for q in prepared.quarantined),
                            }
                            for rank, c in enumerate(retrieval.chunks)
                        ],
                        "guardrails": guardrails.model_dump(mode="json")
                        | {
                            "output_rule_ids": verdict_out.rule_ids,
                            "input_rule_ids": prepared.verdict_in.rule_ids,
                            "input": prepared.verdict_in.model_dump(mode="json", exclude={"redacted_text"}),
                            "output": verdict_out.model_dump(mode="json", exclude={"redacted_text"}),
                            "quarantined_chunks": prepared.quarantined,
                        },
                        "answerer": final.answerer,
                        "provider": provider,
                        "model": model,
                        "prompt_version": final.prompt_version,
                        "usage": {
                            **usage.model_dump(),
                            "tokenizer": usage_source,
                            "fallback_reason": final.fallback_reason,
                            "invented_citations_dropped": final.invented_citations,
                            "rewrite": prepared.standalone.method,
                            "retrieval_mode": retrieval.mode,
                            "best_dense_score": retrieval.best_dense_score,
                        },
                        "latency_ms": latency,
                    },
                ],
                new_conversation=(conversation_id, prepared.scope, prepared.effective[:TITLE_LENGTH])
                if new_conversation
                else None,
            )
        log.info(
            "query.answered",
            conversation_id=str(conversation_id),
            found=final.found,
            answerer=final.answerer,
            fallback=final.fallback_reason,
            retrieved=len(retrieval.chunks),
            citations=len(citations),
            latency_ms=latency,
        )
        return QueryResponse(
            answer=final.text,
            citations=citations,
            conversation_id=conversation_id,
            message_id=message_id,
            usage=usage,
            guardrails=guardrails,
            answerer=final.answerer,
            model=model,
            fallback_reason=final.fallback_reason,
            standalone_question=prepared.standalone.question,
        )

    async def _scan(self, chunks: Sequence[RetrievedChunk], tenant_id: uuid.UUID) -> dict[uuid.UUID, GuardrailVerdict]:
        """Document verdicts of ``chunks`` from the guardrails service now (one round trip)."""
        verdicts = await self.guardrails.scan([c.text for c in chunks], tenant_id)
        return {c.chunk_id: v for c, v in zip(chunks, verdicts, strict=True)}

    async def _quarantine(
        self,
        chunks: list[RetrievedChunk],
        scanned: dict[uuid.UUID, GuardrailVerdict],
        policy_version: str,
        tenant_id: uuid.UUID,
    ) -> tuple[list[RetrievedChunk], list[dict[str, Any]]]:
        """Drop retrieved chunks that carry instructions for the model (indirect prompt injection).

        A quarantined chunk is never put in front of the answerer, so what it
        tells the model to do cannot be done; the message records which chunks
        were held back, why, and which scan said so. Every chunk is judged under
        the policy in force now (``policy_version``, from this request's input
        check): its ingestion scan when it was made under that version, else
        (``scanned``) or a scan now. A rule added after an upload thus still
        protects every question about it, and an unchanged policy costs no rescan.
        """
        verdicts: dict[uuid.UUID, tuple[GuardrailVerdict, str]] = {
            chunk_id: (v, "query") for chunk_id, v in scanned.items()
        }
        for c in chunks:
            stored = c.ingestion_verdict
            if c.chunk_id not in verdicts and stored is not None and stored.get("policy_version") == policy_version:
                verdicts[c.chunk_id] = (GuardrailVerdict.model_validate(stored), "ingestion")
        stale = [c for c in chunks if c.chunk_id not in verdicts]  # scanned under another policy version
        if stale:
            verdicts |= {chunk_id: (v, "query") for chunk_id, v in (await self._scan(stale, tenant_id)).items()}
        usable: list[RetrievedChunk] = []
        quarantined: list[dict[str, Any]] = []
        for c in chunks:
            verdict, source = verdicts[c.chunk_id]
            if _blocks(verdict):
                quarantined.append(
                    {
                        "chunk_id": str(c.chunk_id),
                        "rule_ids": verdict.rule_ids,
                        "scores": verdict.scores,
                        "scan": source,
                    }
                )
            else:
                usable.append(c)
        if quarantined:
            log.warning("query.chunks_quarantined", chunk_ids=[q["chunk_id"] for q in quarantined])
        return usable, quarantined

    # --- entry points ------------------------------------------------------------------

    async def ask(
        self,
        identity: Identity,
        question: str,
        conversation_id: uuid.UUID | None,
        history: Sequence[Turn] | None = None,
    ) -> QueryResponse:
        prepared = await self._prepare(identity, question, conversation_id, history)
        started = time.perf_counter()
        if prepared.relevant:
            draft = await self.answerer.answer(prepared.standalone.question, prepared.usable, self._context(prepared))
        else:
            draft = self._not_found()
        return await self._finish(prepared, draft, _ms(started))

    async def open_stream(
        self,
        identity: Identity,
        question: str,
        conversation_id: uuid.UUID | None,
        history: Sequence[Turn] | None = None,
    ) -> AsyncIterator[StreamDelta | StreamFinal]:
        """Everything that can refuse the request (auth scope, input policy, unknown conversation,
        unavailable embedder) happens here, before the caller starts a 200 stream."""
        prepared = await self._prepare(identity, question, conversation_id, history)
        return self._stream(prepared)

    async def _stream(self, prepared: Prepared) -> AsyncIterator[StreamDelta | StreamFinal]:
        started = time.perf_counter()
        draft: AnswerDraft | None = None
        text, released, releasing = "", "", True
        if not prepared.relevant:
            draft = self._not_found()
        else:
            async for item in stream_answer(
                self.answerer, prepared.standalone.question, prepared.usable, self._context(prepared)
            ):
                if isinstance(item, AnswerDraft):
                    draft = item
                    break
                text += item
                if releasing and _RELEASE_POINT.search(text[len(released) :]):
                    verdict = await self.guardrails.check(
                        text, "output", prepared.identity.tenant_id, canary=prepared.canary
                    )
                    if _passes(verdict):
                        yield StreamDelta(text[len(released) :])
                        released = text
                    else:
                        releasing = False  # the rest waits for the final, authoritative answer
        assert draft is not None  # every answerer ends with a draft
        response = await self._finish(prepared, draft, _ms(started))
        yield StreamFinal(response, replaces_deltas=bool(released) and not response.answer.startswith(released.strip()))
