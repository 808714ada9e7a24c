"""The extractive answerer as plain code: which sentences it quotes, and when it refuses."""

from __future__ import annotations

import uuid

from vectrion_query.answering import (
    EXTRACTIVE_PREFIX,
    NOT_FOUND_ANSWER,
    ExtractiveAnswerer,
    content_words,
    split_sentences,
)
from vectrion_query.retrieval import RetrievedChunk


def chunk(text: str, page: int, score: float = 0.5) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        filename="f.pdf",
        page=page,
        page_end=page,
        text=text,
        score=score,
    )


ANSWERER = ExtractiveAnswerer(min_score=0.3, max_sentences=3)


def test_sentences_split_on_terminal_punctuation_and_blank_lines() -> None:
    text = "First one. Second one? Third!\n\nFourth without stop\nstill fourth. e.g. lower case stays."
    assert split_sentences(text) == [
        "First one.",
        "Second one?",
        "Third!",
        "Fourth without stop\nstill fourth. e.g. lower case stays.",
    ]


def test_content_words_drop_stopwords_and_fold_plurals() -> None:
    assert content_words("What are the refund policies for annual plans?") == {"refund", "polici", "annual", "plan"}


async def test_quotes_the_best_matching_sentence_verbatim_with_its_citation() -> None:
    chunks = [
        chunk("Billing happens monthly. Invoices arrive by email.", 2, score=0.9),
        chunk("Our refund rules are simple. Annual plans can be refunded within 30 days.", 7, score=0.6),
    ]
    draft = await ANSWERER.answer("Can annual plans be refunded?", chunks)
    assert draft.found
    assert draft.text.startswith(EXTRACTIVE_PREFIX)
    assert draft.citations[0].quote == "Annual plans can be refunded within 30 days."
    assert draft.citations[0].page == 7 and draft.citations[0].chunk_id == chunks[1].chunk_id
    assert all(c.chunk_id in {ch.chunk_id for ch in chunks} for c in draft.citations)
    assert '"Annual plans can be refunded within 30 days." [1]' in draft.text


async def test_quotes_at_most_the_configured_number_of_sentences() -> None:
    text = " ".join(f"Llamas eat grass number {i}." for i in range(10))
    draft = await ExtractiveAnswerer(min_score=0.3, max_sentences=2).answer("What do llamas eat?", [chunk(text, 1)])
    assert len(draft.citations) == 2


async def test_says_not_found_and_cites_nothing_below_the_threshold() -> None:
    draft = await ANSWERER.answer("Which volcano erupted in Iceland?", [chunk("Billing happens monthly.", 1)])
    assert not draft.found and draft.citations == [] and draft.text == NOT_FOUND_ANSWER


async def test_question_of_only_stopwords_is_not_answered() -> None:
    draft = await ANSWERER.answer("What is it?", [chunk("It is what it is.", 1)])
    assert not draft.found


async def test_no_chunks_means_not_found() -> None:
    draft = await ANSWERER.answer("Can annual plans be refunded?", [])
    assert not draft.found and draft.citations == []
