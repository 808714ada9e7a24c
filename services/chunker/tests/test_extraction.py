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


def test_spacy_over_page_windows_classifies_every_element_as_unstructured_alone_does() -> None:
    import unstructured.nlp.tokenize as tokenize
    import unstructured.partition.pdf as unstructured_pdf
    import unstructured.partition.text as partition_text

    data = (PDFS / "pdfjs_tracemonkey.pdf").read_bytes()
    extract_pdf(data)  # installs the window batching and the narrative shortcut, loads the model

    def caches_cleared() -> None:
        for cached in (tokenize._process_cached, tokenize._tokenize_for_cache, tokenize.pos_tag):
            cached.cache_clear()

    single_calls: list[str] = []
    run_pipeline = tokenize._run_pipeline
    tokenize._run_pipeline = lambda text: single_calls.append(text) or run_pipeline(text)
    patched = (
        tokenize._process,
        unstructured_pdf.open_pdfminer_pages_generator,
        partition_text.is_possible_narrative_text,
    )
    try:
        caches_cleared()
        batched = extract_pdf(data)
        batched_single_calls = len(single_calls)
        caches_cleared()
        tokenize._process = tokenize._process.__wrapped__  # type: ignore[attr-defined]
        unstructured_pdf.open_pdfminer_pages_generator = patched[1].__wrapped__  # type: ignore[attr-defined]
        partition_text.is_possible_narrative_text = patched[2].__wrapped__  # type: ignore[attr-defined]
        unstructured_alone = extract_pdf(data)
    finally:
        (
            tokenize._process,
            unstructured_pdf.open_pdfminer_pages_generator,
            partition_text.is_possible_narrative_text,
        ) = patched
        tokenize._run_pipeline = run_pipeline
        caches_cleared()
    assert {"Title", "NarrativeText"} <= {e.category for e in batched.elements}
    assert batched.elements == unstructured_alone.elements
    # (nearly) every text was ready from its window's batch (a text unstructured rewords before
    # it asks spaCy: those still go one at a time); unpatched, each text is its own call
    assert batched_single_calls * 10 < len(single_calls) - batched_single_calls


def test_the_narrative_shortcut_answers_as_unstructured_or_defers() -> None:
    import unstructured.nlp.tokenize as tokenize
    import unstructured.partition.text as partition_text

    from vectrion_chunker.page_nlp import narrative_without_sentences

    texts = [
        e.text
        for name in ("pdfjs_tracemonkey.pdf", "pdfplumber_nics-background-checks-2015-11.pdf")
        for e in extract_pdf((PDFS / name).read_bytes()).elements
    ]
    texts += [
        "THE RESULTS ARE SHOWN BELOW.",
        "Results Are Shown For Every Benchmark We Ran",
        "Figure 3. Speedup over the baseline interpreter",
        "It runs. It stops.",
        "12,345 67.8 (9)",
        "a b c d e f",
        "",
    ]
    is_narrative = partition_text.is_possible_narrative_text.__wrapped__  # type: ignore[attr-defined]
    settled = [(text, narrative_without_sentences(text, tokenize._process)) for text in texts]
    assert all(answer == is_narrative(text) for text, answer in settled if answer is not None)
    assert {True, False, None} <= {answer for _, answer in settled}
