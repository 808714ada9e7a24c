"""Conversation memory: the last N messages, and follow-ups rewritten into standalone questions.

Retrieval sees one question, so "and what about the first one?" must become a
question that names what it refers to. With an LLM configured it rewrites the
follow-up (bounded by the request deadline; on any failure we fall back to the
heuristic). The heuristic is plain code:

- a question is a follow-up when it leans on the conversation: a pronoun or
  demonstrative ("it", "that", "those"), an opener ("and ...", "what about"),
  an ordinal reference ("the first one"), or very few content words;
- the referenced turn is the earlier user question named by the ordinal
  ("the first one" -> the first question in memory, "the second one" -> the
  second), else the previous user question;
- the standalone question is the follow-up followed by that earlier question's
  wording, so both retrieval and the extractive answerer see its terms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vectrion_query.answering import content_words

_FOLLOW_UP_OPENERS = ("and ", "also ", "what about", "how about", "but ", "then ", "so ")
_ANAPHORA = frozenset(
    {"it", "its", "it's", "they", "them", "their", "theirs", "that", "this", "those", "these"}
    | {"he", "she", "him", "her", "former", "latter", "one", "ones", "same"}
)
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1, "previous": -1}
_ORDINAL_REFERENCE = re.compile(r"\b(first|second|third|fourth|fifth|last|previous)\s+(one|question|topic|point)\b")
_WORDS = re.compile(r"[a-z']+")


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


def is_follow_up(question: str) -> bool:
    lowered = question.lower().strip()
    if lowered.startswith(_FOLLOW_UP_OPENERS) or _ORDINAL_REFERENCE.search(lowered):
        return True
    words = set(_WORDS.findall(lowered))
    return bool(words & _ANAPHORA) or len(content_words(lowered)) <= 1


def referenced_question(question: str, history: Sequence[Turn]) -> str | None:
    asked = [t.content for t in history if t.role == "user"]
    if not asked:
        return None
    match = _ORDINAL_REFERENCE.search(question.lower())
    if match:
        index = _ORDINALS[match.group(1)]
        if -len(asked) <= index < len(asked):
            return asked[index]
    return asked[-1]


def heuristic_standalone(question: str, history: Sequence[Turn]) -> str:
    """The question itself when it stands alone; else the question plus the turn it refers to."""
    if not history or not is_follow_up(question):
        return question
    earlier = referenced_question(question, history)
    if earlier is None:
        return question
    return f"{question.rstrip()} (about: {earlier.strip()})"


def as_transcript(history: Sequence[Turn]) -> list[tuple[str, str]]:
    return [(t.role, t.content) for t in history]
