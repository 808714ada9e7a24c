"""Answering a question: input policy -> retrieve -> answer -> output policy -> record.

A blocked question is refused before anything is retrieved. Sessions are held
only to read or write the database, never across RPC or vector search.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import GuardrailVerdict
from vectrion_common.db import unit_of_work
from vectrion_common.identity import Identity
from vectrion_common.logs import get_logger
from vectrion_common.problems import NotFound
from vectrion_query import repository
from vectrion_query.access import access_scope
from vectrion_query.answering import AnswerDraft, Answerer, Citation
from vectrion_query.errors import GuardrailBlocked
from vectrion_query.guardrails import Guardrails
from vectrion_query.retrieval import RetrievedChunk, Retriever
from vectrion_query.schemas import CitationOut, GuardrailsOut, QueryResponse, Usage, VerdictSummary
from vectrion_query.tokens import TokenCounter

log = get_logger(__name__)

WITHHELD_ANSWER = "The answer was withheld by the output policy."
TITLE_LENGTH = 80
# Earlier user turns sent with the input check, so an attack split across turns is read whole.
HISTORY_TURNS = 3


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _blocks(verdict: GuardrailVerdict) -> bool:
    return not verdict.allowed or verdict.action == "block"


def apply_output_verdict(draft: AnswerDraft, verdict: GuardrailVerdict) -> AnswerDraft:
    """What the caller may see of the draft after the output check."""
    if _blocks(verdict):
        return AnswerDraft(text=WITHHELD_ANSWER, citations=[], found=False)
    if verdict.action == "redact" and verdict.redacted_text is not None:
        # The quotes are the redacted material itself: keep where it came from, drop the quoted text.
        return AnswerDraft(
            text=verdict.redacted_text,
            citations=[
                Citation(c.document_id, c.filename, c.page, c.chunk_id, quote="[redacted]") for c in draft.citations
            ],
            found=draft.found,
        )
    return draft


def _citation_out(c: Citation) -> CitationOut:
    return CitationOut(document_id=c.document_id, filename=c.filename, page=c.page, chunk_id=c.chunk_id, quote=c.quote)


@dataclass(frozen=True, slots=True)
class QuestionService:
    retriever: Retriever
    guardrails: Guardrails
    answerer: Answerer
    tokens: TokenCounter
    sessions: async_sessionmaker[AsyncSession]
    top_k: int

    async def ask(self, identity: Identity, question: str, conversation_id: uuid.UUID | None) -> QueryResponse:
        scope = access_scope(identity)
        total_started = time.perf_counter()
        history: list[str] = []
        if conversation_id is not None:
            async with self.sessions() as session:
                if not await repository.conversation_exists(session, conversation_id, scope):
                    raise NotFound(f"conversation {conversation_id} not found")
                history = await repository.recent_user_turns(session, conversation_id, HISTORY_TURNS)

        started = time.perf_counter()
        verdict_in = await self.guardrails.check(question, "input", identity.tenant_id, history)
        guard_in_ms = _ms(started)
        if _blocks(verdict_in):
            log.info("query.input_blocked", categories=verdict_in.categories, rules=verdict_in.rule_ids)
            raise GuardrailBlocked(
                "the question was refused by the input policy",
                categories=verdict_in.categories,
                policy_version=verdict_in.policy_version,
            )
        # A redacting input policy wins everywhere downstream: retrieval, answer and what we store.
        effective = verdict_in.redacted_text if verdict_in.action == "redact" and verdict_in.redacted_text else question

        retrieval = await self.retriever.retrieve(effective, scope, self.top_k)

        started = time.perf_counter()
        usable, quarantined = await self._quarantine(retrieval.chunks, identity.tenant_id)
        scan_ms = _ms(started)

        started = time.perf_counter()
        draft = await self.answerer.answer(effective, usable)
        answer_ms = _ms(started)

        started = time.perf_counter()
        verdict_out = await self.guardrails.check(draft.text, "output", identity.tenant_id)
        guard_out_ms = _ms(started)
        final = apply_output_verdict(draft, verdict_out)

        # Extractive: the "prompt" is what was read (question + retrieved chunks), the completion what was said.
        usage = Usage(
            prompt_tokens=self.tokens.count(effective) + sum(self.tokens.count(c.text) for c in usable),
            completion_tokens=self.tokens.count(final.text),
        )
        latency = {
            **retrieval.latency_ms,
            "answer": answer_ms,
            "guardrails_input": guard_in_ms,
            "guardrails_chunks": scan_ms,
            "guardrails_output": guard_out_ms,
            "guardrails": round(guard_in_ms + scan_ms + guard_out_ms, 2),
        }
        guardrails = GuardrailsOut(input=VerdictSummary.of(verdict_in), output=VerdictSummary.of(verdict_out))
        citations = [_citation_out(c) for c in final.citations]
        message_id = uuid.uuid4()
        new_conversation = conversation_id is None
        conversation_id = conversation_id or uuid.uuid4()
        latency["total"] = _ms(total_started)

        async with unit_of_work(self.sessions) as session:
            if new_conversation:
                await repository.create_conversation(session, conversation_id, scope, effective[:TITLE_LENGTH])
            await repository.add_messages(
                session,
                [
                    {"id": uuid.uuid4(), "conversation_id": conversation_id, "role": "user", "content": effective},
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
                                "quarantined": any(q["chunk_id"] == str(c.chunk_id) for q in quarantined),
                            }
                            for rank, c in enumerate(retrieval.chunks)
                        ],
                        "guardrails": guardrails.model_dump(mode="json")
                        | {
                            "output_rule_ids": verdict_out.rule_ids,
                            "input_rule_ids": verdict_in.rule_ids,
                            "input": verdict_in.model_dump(mode="json", exclude={"redacted_text"}),
                            "output": verdict_out.model_dump(mode="json", exclude={"redacted_text"}),
                            "quarantined_chunks": quarantined,
                        },
                        "answerer": self.answerer.name,
                        "usage": _usage_record(usage, self.tokens.source),
                        "latency_ms": latency,
                    },
                ],
            )
        log.info(
            "query.answered",
            conversation_id=str(conversation_id),
            found=final.found,
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
            answerer=self.answerer.name,
        )


    async def _quarantine(
        self, chunks: list[RetrievedChunk], tenant_id: uuid.UUID
    ) -> tuple[list[RetrievedChunk], list[dict[str, Any]]]:
        """Drop retrieved chunks that carry instructions for the model (indirect prompt injection).

        A quarantined chunk is never put in front of the answerer, so what it
        tells the model to do cannot be done; the message records which chunks
        were held back and why.
        """
        verdicts = await self.guardrails.scan([c.text for c in chunks], tenant_id)
        usable = [c for c, v in zip(chunks, verdicts, strict=True) if not _blocks(v)]
        quarantined = [
            {"chunk_id": str(c.chunk_id), "rule_ids": v.rule_ids, "scores": v.scores}
            for c, v in zip(chunks, verdicts, strict=True)
            if _blocks(v)
        ]
        if quarantined:
            log.warning("query.chunks_quarantined", chunk_ids=[q["chunk_id"] for q in quarantined])
        return usable, quarantined


def _usage_record(usage: Usage, source: str) -> dict[str, Any]:
    return {**usage.model_dump(), "tokenizer": source}
