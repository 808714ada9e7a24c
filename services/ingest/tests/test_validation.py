"""Upload validation over the shared real-PDF corpus (see its manifest.csv)."""

from __future__ import annotations

import csv

import pytest

from tests.harness import SHARED_DATA
from vectrion_ingest.errors import EmptyFile, EncryptedPdf, FileTooLarge, InvalidPdf, TooManyPages, UnsupportedFileType
from vectrion_ingest.validation import clean_filename, sniff_content_type, validate_upload

PDFS = SHARED_DATA / "pdfs"
MANIFEST = list(csv.DictReader((PDFS / "manifest.csv").open(encoding="utf-8")))
LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pages": 2000}


def _rows(predicate) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [r for r in MANIFEST if predicate(r)]


@pytest.mark.parametrize(
    "row",
    _rows(lambda r: r["pypdf_opens"] == "True" and r["expect"] != "encrypted"),
    ids=lambda r: r["file"],
)
def test_pdfs_that_open_are_accepted_with_their_page_count(row: dict[str, str]) -> None:
    result = validate_upload((PDFS / row["file"]).read_bytes(), **LIMITS)
    assert result.content_type == "application/pdf"
    assert result.pages == int(row["pypdf_pages"])


@pytest.mark.parametrize("row", _rows(lambda r: r["expect"] == "encrypted"), ids=lambda r: r["file"])
def test_pdfs_that_need_a_user_password_are_rejected_as_encrypted(row: dict[str, str]) -> None:
    with pytest.raises(EncryptedPdf) as caught:
        validate_upload((PDFS / row["file"]).read_bytes(), **LIMITS)
    assert caught.value.status == 422
    assert caught.value.type_ == "encrypted-pdf"


def test_owner_only_encryption_opens_without_a_password() -> None:
    assert validate_upload((PDFS / "pdfplumber_pr-138-example.pdf").read_bytes(), **LIMITS).pages == 2


@pytest.mark.parametrize(
    "row", _rows(lambda r: r["pypdf_opens"] == "False" and r["bytes"] != "0"), ids=lambda r: r["file"]
)
def test_pdfs_that_cannot_be_opened_are_rejected_with_the_parser_reason(row: dict[str, str]) -> None:
    with pytest.raises(InvalidPdf) as caught:
        validate_upload((PDFS / row["file"]).read_bytes(), **LIMITS)
    assert caught.value.type_ == "invalid-pdf"
    assert caught.value.extra["reason"]


def test_an_empty_file_is_rejected() -> None:
    with pytest.raises(EmptyFile):
        validate_upload((PDFS / "pdfplumber_empty.pdf").read_bytes(), **LIMITS)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        b"PK\x03\x04word-document",
        b"\0" * 2000 + b"%PDF-1.7",
    ],
    ids=["png", "zip", "header-after-first-kib"],
)
def test_binary_files_without_a_pdf_signature_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedFileType) as caught:
        validate_upload(data, **LIMITS)
    assert caught.value.status == 415


def test_type_comes_from_the_bytes_not_the_file_name() -> None:
    assert sniff_content_type(b"%PDF-1.4\n...") == "application/pdf"
    assert sniff_content_type(b"GPL Ghostscript junk\n%PDF-1.7\n") == "application/pdf"
    assert sniff_content_type(b"<html>", "claims.pdf") == "text/html"
    assert sniff_content_type(b"\0\1\2 binary", "claims.pdf") is None


def test_files_over_the_size_limit_are_rejected_before_parsing() -> None:
    with pytest.raises(FileTooLarge) as caught:
        validate_upload(b"%PDF-" + b"x" * 100, max_bytes=50, max_pages=10)
    assert caught.value.status == 413


def test_pdfs_over_the_page_limit_are_rejected() -> None:
    with pytest.raises(TooManyPages) as caught:
        validate_upload((PDFS / "docling_multi_page.pdf").read_bytes(), max_bytes=10**7, max_pages=4)
    assert caught.value.extra == {"pages": 5, "max_pages": 4}
    assert validate_upload((PDFS / "docling_multi_page.pdf").read_bytes(), max_bytes=10**7, max_pages=5).pages == 5


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\scan.pdf", "scan.pdf"),
        ("bad\x00name\n.pdf", "badname.pdf"),
        ("", "document.pdf"),
        (None, "document.pdf"),
        ("a" * 300, "a" * 255),
    ],
)
def test_file_names_are_reduced_to_a_safe_base_name(raw: str | None, clean: str) -> None:
    assert clean_filename(raw) == clean
