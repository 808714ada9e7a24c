"""Extraction speed-ups must not change what comes out: elements and chunks of real PDFs
against hashes recorded with the code before any of them (golden/text_pdfs.json holds
all 27 text PDFs of the ingestion benchmark; the test runs a fast, varied few of them).

Regenerate the file only for a change that is meant to change the output, and say so
in the commit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SHARED_DATA
from vectrion_chunker.chunking import ChunkingRules, chunk_blocks
from vectrion_chunker.cleaning import clean_elements
from vectrion_chunker.extraction import extract_pdf

GOLDEN = json.loads((Path(__file__).parent / "golden" / "text_pdfs.json").read_text())

# Prose in two columns, tables, a list-heavy report, code and formulas, a page pypdf rescues.
CHECKED = [
    "pdfjs_tracemonkey.pdf",
    "pdfplumber_nics-background-checks-2015-11.pdf",
    "docling_2305.03393v1-pg9.pdf",
    "docling_code_and_formula.pdf",
    "pdfplumber_senate-expenditures.pdf",
    "docling_amt_handbook_sample.pdf",
]


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()


def fingerprint(data: bytes, rules: ChunkingRules) -> dict[str, Any]:
    extraction = extract_pdf(data)
    elements = [[e.category, e.text, e.page] for e in extraction.elements]
    chunks = [[c.text, c.page_start, c.page_end] for c in chunk_blocks(clean_elements(extraction.elements), rules)]
    return {
        "pages": extraction.pages,
        "elements": len(elements),
        "elements_sha256": _sha256(elements),
        "chunks": len(chunks),
        "chunks_sha256": _sha256(chunks),
    }


@pytest.mark.parametrize("name", CHECKED)
def test_elements_and_chunks_are_those_recorded_before_the_speed_ups(name: str) -> None:
    # The chunker's default rules, as the golden file was recorded with.
    assert fingerprint((SHARED_DATA / "pdfs" / name).read_bytes(), ChunkingRules()) == GOLDEN[name]
