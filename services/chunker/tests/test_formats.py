"""Non-PDF documents and image-only PDFs through extract -> clean -> chunk, offline (no services needed)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tests.documents import PAGE_BREAK, docx, with_declared_size
from tests.harness import SHARED_DATA
from vectrion_chunker.chunking import ChunkingRules
from vectrion_chunker.extraction import DOCX, HTML, MARKDOWN, PDF, TEXT, ocr_unavailable_reason, report_ocr_setting
from vectrion_chunker.extraction import UnreadableDocument as Unreadable
from vectrion_chunker.pipeline import chunk_document
from vectrion_chunker.settings import ChunkerSettings

PDFS = SHARED_DATA / "pdfs"
RULES = ChunkingRules(max_chars=1000, overlap_chars=150, min_chars=200)
SENTENCE = "Revenue grew by four percent in the third quarter while operating costs stayed flat."

SAMPLES = {
    TEXT: f"Quarterly report\n\n{SENTENCE}\n\nThe board approved the plan for next year.\n".encode(),
    MARKDOWN: f"# Quarterly report\n\n{SENTENCE}\n\n- the board approved the plan\n- hiring resumes\n".encode(),
    HTML: (
        "<!doctype html><html><head><meta charset='utf-8'><title>Q3</title><script>var x = 1;</script></head>"
        f"<body><h1>Quarterly report</h1><p>{SENTENCE}</p><p>Café naïve: the board approved.</p></body></html>"
    ).encode(),
    DOCX: docx(["Quarterly report", SENTENCE, "The board approved the plan for next year."]),
}


@pytest.mark.parametrize("content_type", list(SAMPLES), ids=["text", "markdown", "html", "docx"])
def test_each_accepted_type_yields_chunks_with_its_text_on_page_one(content_type: str) -> None:
    document = chunk_document(SAMPLES[content_type], content_type, RULES)
    text = " ".join(c.text for c in document.chunks)
    assert "Quarterly report" in text
    assert SENTENCE in text
    assert (document.pages, document.pages_without_text) == (1, 0)
    assert all((c.page_start, c.page_end) == (1, 1) for c in document.chunks)


def test_html_markup_scripts_and_charset_do_not_leak_into_the_chunks() -> None:
    text = " ".join(c.text for c in chunk_document(SAMPLES[HTML], HTML, RULES).chunks)
    assert "Café naïve" in text
    assert "<" not in text and "var x" not in text


def test_docx_chunks_keep_the_pages_word_recorded() -> None:
    pages = [f"Page {n} says: {SENTENCE} " * 6 for n in (1, 2, 3)]
    data = docx([pages[0], PAGE_BREAK, pages[1], PAGE_BREAK, pages[2]])
    document = chunk_document(data, DOCX, RULES)
    assert (document.pages, document.pages_without_text) == (3, 0)
    assert document.chunks[0].page_start == 1 and document.chunks[-1].page_end == 3
    for chunk in document.chunks:
        cited = {int(n) for n in ("1", "2", "3") if f"Page {n} says" in chunk.text}
        assert chunk.page_start is not None and chunk.page_end is not None
        assert cited <= set(range(chunk.page_start, chunk.page_end + 1))


def test_the_media_type_parameters_and_case_do_not_matter() -> None:
    assert chunk_document(SAMPLES[TEXT], "Text/Plain; charset=utf-8", RULES).chunks


def test_an_unknown_media_type_fails_permanently() -> None:
    with pytest.raises(Unreadable, match="unsupported content type 'image/png'"):
        chunk_document(b"\x89PNG\r\n\x1a\n", "image/png", RULES)


def test_a_damaged_docx_fails_permanently_with_the_reason() -> None:
    damaged = with_declared_size(SAMPLES[DOCX], "word/document.xml", 10)
    with pytest.raises(Unreadable, match="cannot be read"):
        chunk_document(damaged, DOCX, RULES)


def test_html_without_text_fails_as_having_no_text() -> None:
    with pytest.raises(Unreadable, match="no extractable text in the text/html file"):
        chunk_document(b"<html><body><img src='x.png'></body></html>", HTML, RULES)


def test_an_image_only_pdf_fails_with_ocr_off_and_says_why() -> None:
    with pytest.raises(Unreadable, match=r"no extractable text in 4 page\(s\).*OCR is off"):
        chunk_document((PDFS / "docling_nemotron_multipage.pdf").read_bytes(), PDF, RULES)


def test_ocr_is_off_by_default_and_asking_for_it_without_tesseract_logs_why(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ChunkerSettings().ocr == "off"
    with capture_logs() as logs:
        assert report_ocr_setting("off") is False
    assert logs == []

    monkeypatch.setenv("PATH", "")  # no tesseract binary to find, whatever this machine has
    with capture_logs() as logs:
        assert report_ocr_setting("auto") is False
    assert [(e["event"], e["log_level"], e["reason"]) for e in logs] == [
        ("chunker.ocr_unavailable", "warning", "the tesseract binary is not installed")
    ]


needs_tesseract = pytest.mark.skipif(
    ocr_unavailable_reason() is not None, reason="tesseract is not installed (scripts/install.sh installs it)"
)


@needs_tesseract
def test_with_ocr_on_a_scanned_pdf_becomes_chunks_with_its_page_numbers() -> None:
    document = chunk_document((PDFS / "docling_nemotron_multipage.pdf").read_bytes(), PDF, RULES, ocr_max_pages=50)
    assert document.pages == 4 and document.pages_without_text == 0
    text = " ".join(c.text for c in document.chunks)
    assert "Docling" in text and "PDF document conversion" in text
    assert {c.page_start for c in document.chunks} <= {1, 2, 3, 4}


@needs_tesseract
def test_ocr_is_bounded_per_document_and_blank_scans_stay_without_text() -> None:
    bounded = chunk_document((PDFS / "docling_nemotron_multipage.pdf").read_bytes(), PDF, RULES, ocr_max_pages=1)
    assert bounded.pages_without_text == 3
    with pytest.raises(Unreadable, match="no extractable text"):
        chunk_document((PDFS / "pypdfsamples_imagemagick-CCITTFaxDecode.pdf").read_bytes(), PDF, RULES, ocr_max_pages=5)
