"""Extracted elements -> clean text blocks: page furniture dropped, words re-joined, spaces normalised.

Plain code on plain data, so the rules are unit-tested without a PDF.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vectrion_chunker.extraction import ExtractedElement

BlockKind = Literal["title", "text", "list_item", "table"]

# Page furniture: repeated on every page, says nothing about the content.
DROPPED_CATEGORIES = frozenset({"Header", "Footer", "PageNumber", "PageBreak", "Image"})

_KIND_BY_CATEGORY: dict[str, BlockKind] = {"Title": "title", "ListItem": "list_item", "Table": "table"}

# "hyphen-\nation": a word broken at a line end.
_HYPHEN_AT_NEWLINE = re.compile(r"(?<=[^\W\d_])-[ \t]*\n[ \t]*(?=[a-z])")
# unstructured joins a paragraph's lines with spaces, so a broken word arrives as
# "com- pile". A real suspended hyphen ("pre- and post-war") is followed by a
# conjunction, which is kept as is.
_HYPHEN_AT_JOINED_LINE = re.compile(r"(?<=[^\W\d_]{2})- (?!(?:and|or|nor|to|und|et)\b)(?=[a-z])")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


@dataclass(frozen=True, slots=True)
class Block:
    """One clean piece of document structure: a title, a paragraph, a list item or a table."""

    kind: BlockKind
    text: str
    page: int | None


def fix_hyphenation(text: str) -> str:
    text = text.replace("\u00ad", "")  # soft hyphens only mark where a word may break
    text = _HYPHEN_AT_NEWLINE.sub("", text)
    return _HYPHEN_AT_JOINED_LINE.sub("", text)


def normalise_whitespace(text: str) -> str:
    """One space between words, single newlines between lines, no edges."""
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def clean_text(text: str) -> str:
    # NFKC folds ligatures ("ﬁ" -> "fi") and odd spaces that PDFs are full of.
    text = unicodedata.normalize("NFKC", text)
    return normalise_whitespace(fix_hyphenation(text))


def clean_elements(elements: Iterable[ExtractedElement]) -> list[Block]:
    blocks: list[Block] = []
    for element in elements:
        if element.category in DROPPED_CATEGORIES:
            continue
        text = clean_text(element.text)
        if not text:
            continue
        blocks.append(Block(kind=_KIND_BY_CATEGORY.get(element.category, "text"), text=text, page=element.page))
    return blocks
