"""HTTP routes of the query service (behind the gateway; every route needs a verified identity)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.identity import CurrentIdentity
from vectrion_common.problems import NotFound
from vectrion_query import repository
from vectrion_query.access import access_scope
from vectrion_query.asking import QuestionService
from vectrion_query.retrieval import Retriever
from vectrion_query.schemas import (
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


@router.post("/query", response_model=QueryResponse)
async def query(body: QueryRequest, identity: CurrentIdentity, request: Request) -> QueryResponse | StreamingResponse:
    response = await _questions(request).ask(identity, body.question, body.conversation_id)
    if not body.stream:
        return response

    # The extractive answer exists in full once checked by the output policy, so
    # the stream carries it as one event; an LLM answerer would stream deltas here.
    async def events() -> AsyncIterator[str]:
        yield f"event: answer\ndata: {response.model_dump_json()}\n\n"
        yield "event: done\ndata: {}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


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
