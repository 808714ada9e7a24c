"""Clean blocks -> chunks: structure-aware, size-bounded, overlapping, with page ranges.

Rules, in order:

* A title starts a new chunk (it opens a section), unless the current chunk is
  still shorter than ``min_chars``: runs of short titles and captions stay together
  instead of becoming tiny chunks.
* A table is a chunk of its own; rows are not mixed with prose.
* Blocks are packed into a chunk while it stays within ``max_chars``; a block
  longer than that is split at sentence ends, then at spaces, then anywhere.
* When a chunk closes because it is full (not at a section or table boundary),
  the next one starts with the last ``overlap_chars`` (cut at a word) of it, so
  a sentence split across chunks is still found whole in one of them.
* No chunk is longer than ``max_chars``, overlap included. Each chunk's pages
  are the pages of the text it holds, overlap included.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from vectrion_chunker.cleaning import Block

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class ChunkingRules:
    max_chars: int = 1000
    overlap_chars: int = 150
    min_chars: int = 200

    def __post_init__(self) -> None:
        if self.max_chars < 1 or self.overlap_chars < 0 or self.overlap_chars * 2 > self.max_chars:
            raise ValueError("need max_chars >= 1 and 0 <= overlap_chars <= max_chars / 2")

    @property
    def piece_chars(self) -> int:
        """Longest piece of a block: an overlap prefix and a separator must still fit beside it."""
        return max(self.max_chars - self.overlap_chars - len(_SEPARATOR), 1)


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_index: int
    text: str
    page_start: int | None
    page_end: int | None

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class _Draft:
    parts: list[str] = field(default_factory=list)
    part_pages: list[int | None] = field(default_factory=list)
    only_overlap: bool = False  # holds nothing but the previous chunk's tail

    @property
    def length(self) -> int:
        return len(self.text)

    def length_with(self, text: str) -> int:
        return self.length + (len(_SEPARATOR) if self.parts else 0) + len(text)

    def add(self, text: str, page: int | None) -> None:
        self.parts.append(text)
        self.part_pages.append(page)
        self.only_overlap = False

    def add_overlap(self, text: str, pages: list[int]) -> None:
        self.parts.append(text)
        self.part_pages.extend(pages or [None])
        self.only_overlap = True

    @property
    def text(self) -> str:
        return _SEPARATOR.join(self.parts)

    @property
    def pages(self) -> list[int]:
        return [p for p in self.part_pages if p is not None]

    def pages_of_tail(self, tail_chars: int) -> list[int]:
        """Pages of the parts the last ``tail_chars`` characters come from."""
        pages: list[int] = []
        covered = 0
        for text, page in zip(reversed(self.parts), reversed(self.part_pages), strict=False):
            if page is not None and page not in pages:
                pages.append(page)
            covered += len(text) + len(_SEPARATOR)
            if covered >= tail_chars:
                break
        return pages


def split_long_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` chars: at sentence ends, else spaces, else anywhere."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for unit in _units(text, limit):
        candidate = f"{current} {unit}" if current else unit
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, limit: int) -> Iterator[str]:
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= limit:
            yield sentence
            continue
        for word in sentence.split():
            for start in range(0, len(word), limit):
                yield word[start : start + limit]


def overlap_tail(text: str, overlap_chars: int) -> str:
    """The last ``overlap_chars`` of ``text``, starting at a word boundary when there is one."""
    if overlap_chars <= 0:
        return ""
    if len(text) <= overlap_chars:
        return text
    tail = text[-overlap_chars:]
    if not text[-overlap_chars - 1].isspace():
        space = tail.find(" ")
        if 0 <= space < len(tail) - 1:
            tail = tail[space + 1 :]
    return tail.strip()


def chunk_blocks(blocks: Sequence[Block], rules: ChunkingRules | None = None) -> list[Chunk]:
    stream = ChunkStream(rules or ChunkingRules())
    return stream.feed(blocks) + stream.finish()


class ChunkStream:
    """:func:`chunk_blocks` fed a document in pieces (page windows): the chunk being filled
    carries over from one piece to the next, so feeding all pieces then :meth:`finish` gives
    exactly the chunks of chunk_blocks over the whole document, indexes continuing."""

    def __init__(self, rules: ChunkingRules) -> None:
        self.rules = rules
        self.count = 0  # chunks closed so far: the index of the next one
        self._draft = _Draft()

    def feed(self, blocks: Iterable[Block]) -> list[Chunk]:
        """The chunks these blocks closed; the last, still open one waits for more blocks."""
        closed: list[Chunk] = []
        rules = self.rules
        for block in blocks:
            if block.kind == "table":
                self._close(closed, keep_overlap=False)
                for piece in split_long_text(block.text, rules.max_chars):
                    self._draft.add(piece, block.page)
                    self._close(closed, keep_overlap=False)
                continue
            if block.kind == "title":
                if self._draft.only_overlap:
                    self._draft = _Draft()  # a new section does not start with the last one's tail
                elif self._draft.length >= rules.min_chars:
                    self._close(closed, keep_overlap=False)
            for piece in split_long_text(block.text, rules.piece_chars):
                if self._draft.length_with(piece) > rules.max_chars:
                    self._close(closed, keep_overlap=True)
                self._draft.add(piece, block.page)
        return closed

    def finish(self) -> list[Chunk]:
        """The document ended: the open chunk closes."""
        closed: list[Chunk] = []
        self._close(closed, keep_overlap=False)
        return closed

    def _close(self, closed: list[Chunk], *, keep_overlap: bool) -> None:
        draft = self._draft
        if not draft.parts or draft.only_overlap:
            self._draft = _Draft()
            return
        pages = draft.pages
        text = draft.text
        closed.append(
            Chunk(
                chunk_index=self.count,
                text=text,
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
            )
        )
        self.count += 1
        tail = overlap_tail(text, self.rules.overlap_chars) if keep_overlap else ""
        tail_pages = draft.pages_of_tail(len(tail))
        self._draft = _Draft()
        if tail:
            self._draft.add_overlap(tail, tail_pages)
