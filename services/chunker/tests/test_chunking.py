from __future__ import annotations

import itertools

import pytest

from vectrion_chunker.chunking import ChunkingRules, chunk_blocks, overlap_tail, split_long_text
from vectrion_chunker.cleaning import Block


def _sentences(n: int, page: int, word: str = "alpha") -> list[Block]:
    return [Block("text", f"{word} sentence number {i} on page {page} says something.", page) for i in range(n)]


def test_no_chunk_exceeds_max_chars_and_consecutive_chunks_overlap() -> None:
    rules = ChunkingRules(max_chars=300, overlap_chars=60, min_chars=50)
    blocks = _sentences(12, 1) + _sentences(12, 2)
    chunks = chunk_blocks(blocks, rules)
    assert len(chunks) > 3
    assert all(len(c.text) <= 300 for c in chunks)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    for previous, current in itertools.pairwise(chunks):
        tail = overlap_tail(previous.text, 60)
        assert tail and current.text.startswith(tail)
        assert 0 < len(tail) <= 60


def test_every_sentence_survives_chunking() -> None:
    blocks = _sentences(30, 1)
    chunks = chunk_blocks(blocks, ChunkingRules(max_chars=250, overlap_chars=40, min_chars=0))
    joined = "\n".join(c.text for c in chunks)
    assert all(b.text in joined for b in blocks)


def test_page_ranges_cover_the_pages_of_the_text_held() -> None:
    blocks = [
        Block("text", "x" * 120, 1),
        Block("text", "y" * 120, 2),
        Block("text", "z" * 120, 3),
    ]
    chunks = chunk_blocks(blocks, ChunkingRules(max_chars=260, overlap_chars=0, min_chars=0))
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 2), (3, 3)]


def test_overlap_carries_its_page_into_the_next_chunk() -> None:
    blocks = [Block("text", "words " * 30, 4), Block("text", "more " * 40, 5)]
    chunks = chunk_blocks(blocks, ChunkingRules(max_chars=200, overlap_chars=50, min_chars=0))
    assert chunks[0].page_start == chunks[0].page_end == 4
    assert chunks[1].page_start == 4 and chunks[1].page_end == 5


def test_a_title_starts_a_new_chunk_without_overlap() -> None:
    blocks = [
        Block("title", "1 Introduction", 1),
        Block("text", "Intro text. " * 25, 1),
        Block("title", "2 Method", 2),
        Block("text", "Method text.", 2),
    ]
    chunks = chunk_blocks(blocks, ChunkingRules(max_chars=1000, overlap_chars=150, min_chars=200))
    assert len(chunks) == 2
    assert chunks[0].text.startswith("1 Introduction")
    assert chunks[1].text == "2 Method\n\nMethod text."
    assert (chunks[1].page_start, chunks[1].page_end) == (2, 2)


def test_short_sections_are_merged_instead_of_becoming_tiny_chunks() -> None:
    blocks = [Block("title", "Title", 1), Block("title", "Authors", 1), Block("text", "Short abstract.", 1)]
    chunks = chunk_blocks(blocks, ChunkingRules(min_chars=200))
    assert [c.text for c in chunks] == ["Title\n\nAuthors\n\nShort abstract."]


def test_a_table_is_a_chunk_of_its_own() -> None:
    blocks = [Block("text", "Before.", 1), Block("table", "a | b\n1 | 2", 1), Block("text", "After.", 1)]
    chunks = chunk_blocks(blocks, ChunkingRules(min_chars=0))
    assert [c.text for c in chunks] == ["Before.", "a | b\n1 | 2", "After."]


def test_an_oversized_block_is_split_at_sentences_then_words() -> None:
    text = "First sentence is here. " * 10 + "x" * 90
    pieces = split_long_text(text.strip(), 80)
    assert all(len(p) <= 80 for p in pieces)
    assert pieces[0] == "First sentence is here. First sentence is here. First sentence is here."
    assert "".join(pieces).replace(" ", "") == text.strip().replace(" ", "")


def test_chunk_hash_depends_on_text_only() -> None:
    a = chunk_blocks([Block("text", "same", 1)])[0]
    b = chunk_blocks([Block("text", "same", 9)])[0]
    c = chunk_blocks([Block("text", "other", 1)])[0]
    assert a.content_hash == b.content_hash != c.content_hash
    assert len(a.content_hash) == 64


def test_overlap_must_leave_room_for_new_text() -> None:
    with pytest.raises(ValueError):
        ChunkingRules(max_chars=100, overlap_chars=60)
