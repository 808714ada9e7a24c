"""The query service's application: HTTP API + chunks.embedded.v2 (and v1) consumer + outbox relay.

Run: ``uvicorn --factory vectrion_query.main:create_app --port 8004``.
With the default embedded Qdrant (local mode) exactly ONE query process may
run: local mode holds a process-wide lock on ``qdrant_path``. Scale out with a
Qdrant server (``QDRANT_URL``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectrion_common.logs import configure_logging, get_logger
from vectrion_common.runtime import ServiceRuntime
from vectrion_common.settings import load_settings
from vectrion_common.web import create_service_app
from vectrion_query import admin_api
from vectrion_query.api import router
from vectrion_query.asking import QuestionService
from vectrion_query.guardrails import make_guardrails
from vectrion_query.handlers import register_handlers
from vectrion_query.indexing import CONSUMER, ChunkIndexer
from vectrion_query.lexical import LexicalIndex
from vectrion_query.llm_answering import FollowUpRewriter, make_answerer, make_llm_client
from vectrion_query.models import outbox
from vectrion_query.query_embedding import make_query_embedder
from vectrion_query.retrieval import Retriever
from vectrion_query.settings import QuerySettings
from vectrion_query.tokens import make_token_counter
from vectrion_query.vector_store import make_vector_store

log = get_logger(__name__)


def create_app(settings: QuerySettings | None = None) -> FastAPI:
    settings = settings or load_settings(QuerySettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    secret = settings.require_secret("internal_token_secret").get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime(app, settings, consumer=CONSUMER, outbox=outbox)
        sessions, broker, topology = runtime.sessions, runtime.broker, runtime.topology
        store = make_vector_store(settings)
        await store.start()
        lexical = LexicalIndex(sessions)
        tokens = make_token_counter()
        indexer = ChunkIndexer(
            store=store,
            sessions=sessions,
            dimension=settings.embedding_dimension,
            wake_relay=runtime.wake_relay,
            on_tenant_changed=lexical.invalidate,
            count_tokens=tokens.count_many,
        )
        llm = make_llm_client(settings)
        register_handlers(runtime, indexer)
        app.state.readiness_checks["vector_store"] = store.ping
        try:
            async with runtime.running():
                retriever = Retriever(
                    make_query_embedder(settings, broker, topology),
                    store,
                    sessions,
                    max_chunks_per_page=settings.max_chunks_per_page,
                    lexical=lexical,
                    mode=settings.retrieval_mode,
                    rrf_k=settings.rrf_k,
                    hybrid_candidates=settings.hybrid_candidates,
                )
                app.state.sessions = sessions
                app.state.vector_store = store
                app.state.broker = broker
                app.state.retriever = retriever
                app.state.lexical = lexical
                app.state.llm = llm
                app.state.questions = QuestionService(
                    retriever=retriever,
                    guardrails=make_guardrails(settings, broker, topology),
                    answerer=make_answerer(settings, tokens, llm),
                    tokens=tokens,
                    sessions=sessions,
                    top_k=settings.answer_top_k,
                    rewriter=FollowUpRewriter(llm if settings.llm_rewrite_followups else None),
                    memory_messages=settings.memory_messages,
                    deadline_seconds=settings.request_deadline_seconds,
                    min_relevance=settings.answer_min_relevance,
                    guardrails_timeout_seconds=settings.guardrails_timeout_seconds,
                )
                log.info(
                    "query.started",
                    qdrant="server" if settings.qdrant_url else f"local:{settings.qdrant_path}",
                    answerer=settings.answerer,
                    retrieval=settings.retrieval_mode,
                )
                yield
        finally:
            if llm is not None:
                await llm.aclose()
            await store.close()

    app = create_service_app(settings.service_name, lifespan=lifespan, otlp_endpoint=settings.otlp_endpoint)
    app.state.internal_token_secret = secret
    app.include_router(router)
    app.include_router(admin_api.router)
    return app
