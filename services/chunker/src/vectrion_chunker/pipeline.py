"""extract -> clean -> chunk for one document: synchronous, CPU-bound, no I/O besides the bytes given.

A long PDF goes through in page windows (:class:`WindowedChunker`): each window is
extracted, cleaned and chunked on its own, the chunk being filled carries over to the
next window, so the chunks are those of the whole document at once (same texts, pages
and indexes) while the first ones can be stored and embedded before the last page is
read. Other media types, and PDFs no longer than one window, are one window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vectrion_chunker.chunking import Chunk, ChunkingRules, ChunkStream
from vectrion_chunker.cleaning import clean_elements
from vectrion_chunker.extraction import (
    PDF,
    UnreadableDocument,
    count_pages,
    extract_document,
    extract_pdf,
    ocr_pages,
)


@dataclass(frozen=True, slots=True)
class ChunkedDocument:
    chunks: list[Chunk]
    pages: int
    pages_without_text: int
    extract_seconds: float


@dataclass(frozen=True, slots=True)
class ChunkedWindow:
    """What one window added: the chunks it closed (the last window: all the rest)."""

    chunks: list[Chunk]
    pages: int
    pages_without_text: int
    extract_seconds: float
    last: bool


class WindowedChunker:
    """Call :meth:`next_window` until a window comes back ``last``. Not thread-safe: one caller."""

    def __init__(
        self, data: bytes, content_type: str, rules: ChunkingRules, *, window_pages: int = 0, ocr_max_pages: int = 0
    ) -> None:
        self._data = data
        self._content_type = content_type
        self._stream = ChunkStream(rules)
        self._ocr_left = ocr_max_pages
        self._windows: list[range] | None = None  # None until the first call: counting pages is CPU work too
        self._window_pages = window_pages
        self._next = 0

    @property
    def is_pdf(self) -> bool:
        return self._content_type.split(";", 1)[0].strip().lower() == PDF

    def next_window(self) -> ChunkedWindow:
        """Raises :class:`UnreadableDocument` when the file can never yield chunks."""
        started = time.perf_counter()
        if self._windows is None:
            self._windows = page_windows(count_pages(self._data), self._window_pages) if self.is_pdf else []
        if self._windows:
            window = self._windows[self._next]
            # One window: the whole file as it is, exactly as before windows existed.
            extraction = extract_pdf(self._data, page_range=window if len(self._windows) > 1 else None)
            # OCR here, not in extract_pdf: ocr_max_pages bounds the whole document, not each window.
            missing = [p for p in window if p not in extraction.pages_with_text][: self._ocr_left]
            if missing:
                extraction.elements.extend(ocr_pages(self._data, missing))
                self._ocr_left -= len(missing)
            self._next += 1
            last = self._next == len(self._windows)
        else:
            extraction = extract_document(self._data, self._content_type, ocr_max_pages=self._ocr_left)
            last = True
        extract_seconds = time.perf_counter() - started
        chunks = self._stream.feed(clean_elements(extraction.elements))
        if last:
            chunks += self._stream.finish()
            if self._stream.count == 0:
                raise UnreadableDocument(self._no_text_reason())
        return ChunkedWindow(
            chunks=chunks,
            pages=extraction.pages,
            pages_without_text=extraction.pages_without_text,
            extract_seconds=extract_seconds,
            last=last,
        )

    def _no_text_reason(self) -> str:
        if self.is_pdf:
            pages = sum(len(w) for w in self._windows or [])
            return f"no extractable text in {pages} page(s) (a scan? OCR is off or found no text)"
        return f"no extractable text in the {self._content_type} file"


def page_windows(pages: int, window_pages: int) -> list[range]:
    """1-based page ranges of at most ``window_pages`` (0: one window). A short tail joins the window
    before it (under half a window), so a document just over a window is not cut in two."""
    if window_pages <= 0 or pages <= window_pages:
        return [range(1, pages + 1)]
    starts = list(range(1, pages + 1, window_pages))
    if pages + 1 - starts[-1] < window_pages // 2:
        starts.pop()
    return [range(start, stop) for start, stop in zip(starts, [*starts[1:], pages + 1], strict=True)]


def chunk_document(
    data: bytes, content_type: str, rules: ChunkingRules, *, ocr_max_pages: int = 0, window_pages: int = 0
) -> ChunkedDocument:
    """All windows at once. Raises :class:`UnreadableDocument` when the file can never yield chunks."""
    chunker = WindowedChunker(data, content_type, rules, window_pages=window_pages, ocr_max_pages=ocr_max_pages)
    chunks: list[Chunk] = []
    pages = pages_without_text = 0
    extract_seconds = 0.0
    while True:
        window = chunker.next_window()
        chunks += window.chunks
        pages += window.pages
        pages_without_text += window.pages_without_text
        extract_seconds += window.extract_seconds
        if window.last:
            return ChunkedDocument(chunks, pages, pages_without_text, extract_seconds)
