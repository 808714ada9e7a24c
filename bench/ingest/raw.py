"""The raw in-process work on the same files: the chunker's own extract + clean + chunk code, then
the embedder's own model wrapper encoding every chunk, back to back. No broker, no DB, no HTTP.

Settings come from the same classes (and environment) the services read, so the raw run chunks
and encodes exactly as the stack does. Imports and model load happen before the clock starts,
after one untimed warm-up of each step (the stack gets a warm-up document too).
"""

from __future__ import annotations

import time
from typing import Any

from bench.ingest.corpus import Pdf
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.extraction import PDF
from vectrion_chunker.pipeline import chunk_document
from vectrion_chunker.settings import ChunkerSettings
from vectrion_embedder.model import SentenceTransformerEmbedder, make_embedder
from vectrion_embedder.settings import EmbedderSettings


def run_raw(pdfs: list[Pdf], warmup: Pdf) -> dict[str, Any]:
    chunker = ChunkerSettings()
    rules = ChunkingRules(
        max_chars=chunker.chunk_max_chars, overlap_chars=chunker.chunk_overlap_chars, min_chars=chunker.chunk_min_chars
    )
    embedder_settings = EmbedderSettings()
    embedder = make_embedder(embedder_settings)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    warm = chunk_document(warmup.path.read_bytes(), PDF, rules)
    embedder.embed_sync([c.text for c in warm.chunks])

    texts: list[str] = []
    pages = 0
    extract_s = 0.0
    started = time.perf_counter()
    for pdf in pdfs:
        document = chunk_document(pdf.path.read_bytes(), PDF, rules)
        texts += [c.text for c in document.chunks]
        pages += document.pages
        extract_s += document.extract_seconds
    chunked = time.perf_counter()
    embedder.embed_sync(texts)
    done = time.perf_counter()

    total = done - started
    return {
        "pages": pages,
        "chunks": len(texts),
        "chunk_chars_mean": round(sum(map(len, texts)) / max(len(texts), 1), 1),
        "extract_s": round(extract_s, 2),
        "extract_and_chunk_s": round(chunked - started, 2),
        "encode_s": round(done - chunked, 2),
        "seconds": round(total, 2),
        "pages_per_s": round(pages / total, 2),
        "chunks_per_s": round(len(texts) / total, 2),
        "extract_pages_per_s": round(pages / (chunked - started), 2),
        "encode_chunks_per_s": round(len(texts) / (done - chunked), 2),
        "settings": {  # the same classes and environment the services read
            "chunk_max_chars": rules.max_chars,
            "chunk_overlap_chars": rules.overlap_chars,
            "chunker_embedding_batch_size": chunker.embedding_batch_size,
            "chunker_prefetch": chunker.broker_prefetch,
            "encode_batch_size": embedder_settings.encode_batch_size,
            "embedder_prefetch": embedder_settings.broker_prefetch,
            "ingest_encode_nice": embedder_settings.ingest_encode_nice,
            "coalesce_max_texts": embedder_settings.coalesce_max_texts,
            "torch_threads": embedder_settings.torch_threads,
        },
    }
