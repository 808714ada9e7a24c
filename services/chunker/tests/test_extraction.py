"""Extraction against real PDFs, offline (the root conftest sets HF_HUB_OFFLINE)."""

from __future__ import annotations

import pytest

from tests.harness import SHARED_DATA
from vectrion_chunker.extraction import UnreadableDocument, extract_pdf

PDFS = SHARED_DATA / "pdfs"


def test_text_pdf_yields_elements_on_every_page() -> None:
    extraction = extract_pdf((PDFS / "docling_multi_page.pdf").read_bytes())
    assert extraction.pages == 5
    assert len(extraction.elements) > 20
    assert extraction.pages_with_text == {1, 2, 3, 4, 5}
    assert extraction.pages_without_text == 0
    assert {e.category for e in extraction.elements} >= {"Title", "NarrativeText"}
    assert all(e.page is not None and 1 <= e.page <= 5 for e in extraction.elements)
    # page numbers follow reading order
    pages = [e.page for e in extraction.elements]
    assert pages == sorted(pages)  # type: ignore[type-var]


def test_encrypted_pdf_is_refused_instead_of_returning_nothing() -> None:
    with pytest.raises(UnreadableDocument, match="encrypted"):
        extract_pdf((PDFS / "pdfplumber_password-example.pdf").read_bytes())


def test_a_file_that_is_not_a_pdf_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match="cannot be opened"):
        extract_pdf(b"%PDF-1.4\nthis is not really a PDF")


def test_a_page_pdfminer_reads_as_empty_falls_back_to_pypdf_text() -> None:
    # A page of figures and text boxes: unstructured's fast strategy returns nothing for it.
    extraction = extract_pdf((SHARED_DATA / "pdfs" / "docling_amt_handbook_sample.pdf").read_bytes())
    assert extraction.pages_without_text == 0
    assert sum(len(e.text) for e in extraction.elements) > 3000
    assert {e.page for e in extraction.elements} == {1}


def test_an_image_only_page_stays_without_text() -> None:
    extraction = extract_pdf((SHARED_DATA / "pdfs" / "docling_ocr_test.pdf").read_bytes())
    assert extraction.elements == [] and extraction.pages_without_text == 1
