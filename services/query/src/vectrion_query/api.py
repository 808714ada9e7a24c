"""HTTP routes of the query service (behind the gateway; every route needs a verified identity)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.identity import CurrentIdentity
from vectrion_common.problems import PROBLEM_BASE, NotFound, ProblemError
from vectrion_query import openai_compat, repository
from vectrion_query.access import access_scope
from vectrion_query.asking import QuestionService, StreamDelta, StreamFinal
from vectrion_query.retrieval import Retriever
from vectrion_query.schemas import (
    ChatCompletionRequest,
    ConversationDetail,
    ConversationList,
    ConversationOut,
    MessageOut,
    QueryRequest,
    QueryResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
)

router = APIRouter(prefix="/v1", tags=["query"])


def _retriever(request: Request) -> Retriever:
    retriever: Retriever = request.app.state.retriever
    return retriever


def _questions(request: Request) -> QuestionService:
    service: QuestionService = request.app.state.questions
    return service


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, identity: CurrentIdentity, request: Request) -> SearchResponse:
    retrieval = await _retriever(request).retrieve(body.query, access_scope(identity), body.top_k)
    return SearchResponse(
        results=[
            SearchResult(
                chunk_id=c.chunk_id,
                document_id=c.document_id,
                page=c.page,
                score=c.score,
                text=c.text,
                filename=c.filename,
            )
            for c in retrieval.chunks
        ]
    )


_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _sse(events: AsyncIterator[StreamDelta | StreamFinal]) -> AsyncIterator[str]:
    """``delta`` events (text the output policy has allowed so far), then ``answer`` (the full
    QueryResponse, authoritative: it may replace the deltas) and ``done``; ``error`` if it fails."""
    try:
        async for event in events:
            if isinstance(event, StreamDelta):
                yield f"event: delta\ndata: {json.dumps({'text': event.text})}\n\n"
            else:
                payload = event.response.model_dump(mode="json") | {"replaces_deltas": event.replaces_deltas}
                yield f"event: answer\ndata: {json.dumps(payload)}\n\n"
    except ProblemError as exc:  # e.g. guardrails unavailable for the output check: fail closed, say so
        problem = {"type": PROBLEM_BASE + exc.type_, "title": exc.title, "status": exc.status, "detail": exc.detail}
        yield f"event: error\ndata: {json.dumps(problem)}\n\n"
    yield "event: done\ndata: {}\n\n"


@router.post("/query", response_model=QueryResponse)
async def query(body: QueryRequest, identity: CurrentIdentity, request: Request) -> QueryResponse | StreamingResponse:
    if not body.stream:
        return await _questions(request).ask(identity, body.question, body.conversation_id)
    # Refusals (input policy, unknown conversation, embedder down) are raised here, as problem+json.
    events = await _questions(request).open_stream(identity, body.question, body.conversation_id)
    return StreamingResponse(_sse(events), media_type="text/event-stream", headers=_SSE_HEADERS)


@router.post("/chat/completions", tags=["openai"], response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, identity: CurrentIdentity, request: Request
) -> StreamingResponse | dict[str, Any]:
    """OpenAI-compatible chat completions over Vectrion (model ``vectrion-rag``); see openai_compat."""
    question, history = openai_compat.question_and_history(body)
    questions = _questions(request)
    if not body.stream:
        return openai_compat.completion(await questions.ask(identity, question, None, history))
    events = await questions.open_stream(identity, question, None, history)
    return StreamingResponse(
        openai_compat.completion_chunks(events), media_type="text/event-stream", headers=_SSE_HEADERS
    )


@router.get("/conversations", response_model=ConversationList)
async def list_conversations(
    identity: CurrentIdentity, request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> ConversationList:
    async with _sessions(request)() as session:
        found = await repository.list_conversations(session, access_scope(identity), limit)
    return ConversationList(
        conversations=[
            ConversationOut(id=c.id, title=c.title, created_at=c.created_at, message_count=c.message_count)
            for c in found
        ]
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(
    conversation_id: uuid.UUID, identity: CurrentIdentity, request: Request
) -> ConversationDetail:
    async with _sessions(request)() as session:
        found = await repository.get_conversation(session, conversation_id, access_scope(identity))
    if found is None:  # someone else's conversation is indistinguishable from a missing one
        raise NotFound(f"conversation {conversation_id} not found")
    head, rows = found
    return ConversationDetail(
        id=head.id,
        title=head.title,
        created_at=head.created_at,
        message_count=head.message_count,
        messages=[
            MessageOut(
                id=r.id,
                role=r.role,
                content=r.content,
                citations=r.citations,
                answerer=r.answerer,
                created_at=r.created_at,
            )
            for r in rows
        ],
    )
