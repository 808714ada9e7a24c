"""A PDF in page windows gives the chunks of the whole document at once, window by window."""

from __future__ import annotations

from tests.harness import SHARED_DATA
from vectrion_chunker.chunking import Chunk, ChunkingRules, ChunkStream, chunk_blocks
from vectrion_chunker.cleaning import Block
from vectrion_chunker.extraction import PDF, extract_pdf
from vectrion_chunker.pipeline import ChunkedWindow, WindowedChunker, chunk_document, page_windows

PDFS = SHARED_DATA / "pdfs"
RULES = ChunkingRules()


def _as_tuples(chunks: list[Chunk]) -> list[tuple[int, str, int | None, int | None]]:
    return [(c.chunk_index, c.text, c.page_start, c.page_end) for c in chunks]


def test_a_chunk_stream_fed_in_pieces_gives_the_chunks_of_the_whole() -> None:
    rules = ChunkingRules(max_chars=300, overlap_chars=60, min_chars=80)
    blocks = [
        Block("title", "Introduction", 1),
        *[Block("text", f"Sentence {i} of the first page carries some words.", 1) for i in range(9)],
        Block("table", "a | b | c\n1 | 2 | 3", 2),
        Block("title", "Method", 2),
        *[Block("text", f"Sentence {i} of page three is here too, a bit longer than most.", 3) for i in range(11)],
    ]
    whole = chunk_blocks(blocks, rules)
    for cuts in ([3], [1, 2, 10, 11, 12], list(range(1, len(blocks)))):
        stream = ChunkStream(rules)
        pieces = [blocks[a:b] for a, b in zip([0, *cuts], [*cuts, len(blocks)], strict=True)]
        streamed = [chunk for piece in pieces for chunk in stream.feed(piece)] + stream.finish()
        assert _as_tuples(streamed) == _as_tuples(whole)


def test_page_windows_cover_every_page_once_and_a_short_tail_joins_the_window_before() -> None:
    assert page_windows(10, 0) == [range(1, 11)]
    assert page_windows(10, 32) == [range(1, 11)]
    assert page_windows(100, 32) == [range(1, 33), range(33, 65), range(65, 101)]  # tail of 4 joins
    assert page_windows(120, 32) == [range(1, 33), range(33, 65), range(65, 97), range(97, 121)]
    for pages, size in ((352, 32), (7, 2), (33, 32)):
        windows = page_windows(pages, size)
        assert [p for w in windows for p in w] == list(range(1, pages + 1))


def test_a_window_of_a_pdf_has_the_elements_of_those_pages_in_a_whole_extraction() -> None:
    data = (PDFS / "pdfjs_tracemonkey.pdf").read_bytes()
    whole = extract_pdf(data)
    window = extract_pdf(data, page_range=range(5, 9))
    assert window.pages == 4 and window.pages_with_text == {5, 6, 7, 8}
    expected = [(e.category, e.text, e.page) for e in whole.elements if e.page in range(5, 9)]
    assert [(e.category, e.text, e.page) for e in window.elements] == expected


def test_a_pdf_chunked_in_windows_gives_the_chunks_of_one_window_window_by_window() -> None:
    data = (PDFS / "pdfjs_tracemonkey.pdf").read_bytes()  # 14 pages
    whole = chunk_document(data, PDF, RULES)
    chunker = WindowedChunker(data, PDF, RULES, window_pages=4)
    windows: list[ChunkedWindow] = []
    while not (windows and windows[-1].last):
        windows.append(chunker.next_window())
    assert [w.pages for w in windows] == [4, 4, 4, 2]
    assert all(w.chunks for w in windows)
    streamed = [c for w in windows for c in w.chunks]
    assert _as_tuples(streamed) == _as_tuples(whole.chunks)
    # each window's chunks end on its pages (a chunk may still close on the next window's first block)
    assert max(c.page_end or 0 for c in windows[0].chunks) <= 5
    assert sum(w.pages_without_text for w in windows) == whole.pages_without_text
