"""extract -> clean -> chunk for one document: synchronous, CPU-bound, no I/O besides the bytes given."""

from __future__ import annotations

import time
from dataclasses import dataclass

from vectrion_chunker.chunking import Chunk, ChunkingRules, chunk_blocks
from vectrion_chunker.cleaning import clean_elements
from vectrion_chunker.extraction import PDF, Extraction, UnreadableDocument, extract_document


@dataclass(frozen=True, slots=True)
class ChunkedDocument:
    chunks: list[Chunk]
    pages: int
    pages_without_text: int
    extract_seconds: float


def chunk_document(data: bytes, content_type: str, rules: ChunkingRules, *, ocr_max_pages: int = 0) -> ChunkedDocument:
    """Raises :class:`UnreadableDocument` when the file can never yield chunks."""
    started = time.perf_counter()
    extraction = extract_document(data, content_type, ocr_max_pages=ocr_max_pages)
    extract_seconds = time.perf_counter() - started
    chunks = chunk_blocks(clean_elements(extraction.elements), rules)
    if not chunks:
        raise UnreadableDocument(_no_text_reason(extraction, content_type))
    return ChunkedDocument(
        chunks=chunks,
        pages=extraction.pages,
        pages_without_text=extraction.pages_without_text,
        extract_seconds=extract_seconds,
    )


def _no_text_reason(extraction: Extraction, content_type: str) -> str:
    if content_type == PDF:
        return f"no extractable text in {extraction.pages} page(s) (a scan? OCR is off or found no text)"
    return f"no extractable text in the {content_type} file"
