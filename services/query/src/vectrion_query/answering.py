"""The answerer seam and the built-in extractive answerer.

The extractive answerer does not generate text: it quotes the 1-3 sentences of
the retrieved chunks that best cover the question's content words, verbatim,
labelled as quotes, each with a citation to the chunk it came from. When no
sentence scores above ``answer_min_score`` it says the documents do not contain
the answer and cites nothing. The LLM answerer (:mod:`vectrion_query.llm_answering`)
plugs in behind the same :class:`Answerer` protocol and falls back to this one.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from vectrion_query.retrieval import RetrievedChunk
from vectrion_query.settings import QuerySettings

EXTRACTIVE_PREFIX = "Extractive answer (quoted from your documents):"
NOT_FOUND_ANSWER = (
    "Extractive answer: the documents available to you do not appear to contain an answer to this question."
)

# Sentence ends at . ! or ? followed by space and a capital/digit/quote, or at a blank line.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only
or other our ours ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours yourself yourselves tell please explain describe give list show according
document documents say says said
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@dataclass(frozen=True, slots=True)
class Citation:
    document_id: uuid.UUID
    filename: str
    page: int | None
    chunk_id: uuid.UUID
    quote: str


@dataclass(frozen=True, slots=True)
class AnswerDraft:
    text: str
    citations: list[Citation]
    found: bool
    answerer: str = "extractive"
    model: str | None = None
    # Provider-reported usage when an LLM answered (None = count with our tokenizer).
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    fallback_reason: str | None = None  # set when the LLM failed and the extractive answerer stood in
    prompt_version: str | None = None
    invented_citations: int = 0


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What an answerer may use besides question and chunks (an extractive answerer ignores it)."""

    history: Sequence[tuple[str, str]] = ()
    deadline_seconds: float = 30.0
    canary: str | None = None


class Answerer(Protocol):
    name: str

    async def answer(
        self, question: str, chunks: Sequence[RetrievedChunk], context: AnswerContext | None = None
    ) -> AnswerDraft: ...


def content_words(text: str) -> set[str]:
    """Lower-cased, lightly stemmed words that carry meaning (no stopwords)."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())}


@functools.lru_cache(maxsize=16_384)  # words repeat across sentences and answers; ~2 MB at most
def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()]


@dataclass(frozen=True, slots=True)
class _Candidate:
    score: float
    rank: int
    position: int
    sentence: str
    chunk: RetrievedChunk


def score_sentences(question: str, chunks: Sequence[RetrievedChunk]) -> list[_Candidate]:
    """Sentences with any overlap, best first.

    score = share of the question's content words the sentence contains, plus a
    small bonus for the chunk's retrieval score and rank (ties go to better chunks).
    """
    wanted = content_words(question)
    if not wanted:
        return []
    candidates: list[_Candidate] = []
    for rank, chunk in enumerate(chunks):
        for position, sentence in enumerate(split_sentences(chunk.text)):
            overlap = len(wanted & content_words(sentence)) / len(wanted)
            if overlap == 0:
                continue
            score = overlap + 0.1 * max(chunk.score, 0.0) + 0.05 / (rank + 1)
            candidates.append(_Candidate(score, rank, position, sentence, chunk))
    candidates.sort(key=lambda c: (-c.score, c.rank, c.position))
    return candidates


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, *, min_score: float, max_sentences: int) -> None:
        self._min_score = min_score
        self._max_sentences = max_sentences

    async def answer(
        self, question: str, chunks: Sequence[RetrievedChunk], context: AnswerContext | None = None
    ) -> AnswerDraft:
        return self.answer_now(question, chunks)

    def answer_now(self, question: str, chunks: Sequence[RetrievedChunk]) -> AnswerDraft:
        candidates = score_sentences(question, chunks)
        if not candidates or candidates[0].score < self._min_score:
            return AnswerDraft(text=NOT_FOUND_ANSWER, citations=[], found=False)
        # Keep only sentences close to the best one, so a strong quote is not diluted by weak ones.
        floor = max(self._min_score, 0.6 * candidates[0].score)
        chosen: list[_Candidate] = []
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.score < floor or len(chosen) >= self._max_sentences:
                break
            if candidate.sentence in seen:
                continue
            seen.add(candidate.sentence)
            chosen.append(candidate)
        chosen.sort(key=lambda c: (c.rank, c.position))  # read in document order
        citations = [
            Citation(
                document_id=c.chunk.document_id,
                filename=c.chunk.filename,
                page=c.chunk.page,
                chunk_id=c.chunk.chunk_id,
                quote=c.sentence,
            )
            for c in chosen
        ]
        lines = [f'"{c.sentence}" [{i}]' for i, c in enumerate(chosen, start=1)]
        return AnswerDraft(text="\n".join([EXTRACTIVE_PREFIX, *lines]), citations=citations, found=True)


def make_extractive_answerer(settings: QuerySettings) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(min_score=settings.answer_min_score, max_sentences=settings.answer_max_sentences)
