"""Non-PDF uploads: the type comes from the bytes, bad files are refused with a reason (pure code, no services)."""

from __future__ import annotations

import pytest

from tests.documents import PAGE_BREAK, docx, with_declared_size, zip_of
from tests.harness import SHARED_DATA
from vectrion_ingest.errors import EmptyFile, FileTooLarge, InvalidDocx, TooManyPages, UnsupportedFileType
from vectrion_ingest.file_types import DOCX, HTML, MARKDOWN, PDF, TEXT, sniff_content_type, zip_entry_count
from vectrion_ingest.validation import DOCX_MAX_ENTRIES, DOCX_MAX_UNPACKED_BYTES, validate_upload

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pages": 2000}
PROSE = "Quarterly report\n\nRevenue grew by four percent while costs stayed flat.\n"


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (docx(["Hello"]), "x.bin", DOCX),
        (b"<!DOCTYPE html><html><body><p>hi</p></body></html>", "page.txt", HTML),
        (b"\xef\xbb\xbf \n\t<HTML lang='en'><p>hi</p></HTML>", None, HTML),
        (b"<!-- generated -->\n<head><title>t</title></head>\n<BODY>\n<p>hi</p>", None, HTML),
        (PROSE.encode(), "notes.txt", TEXT),
        (PROSE.encode(), None, TEXT),
        (PROSE.encode(), "README.md", MARKDOWN),
        (PROSE.encode(), "Guide.MARKDOWN", MARKDOWN),
        ("Überblick: naïve café, 東京\n".encode(), "a.md", MARKDOWN),
        (b"\xef\xbb\xbf" + PROSE.encode(), "bom.txt", TEXT),
        (b"GPL Ghostscript junk\n%PDF-1.7\n", "claims.md", PDF),
    ],
    ids=["docx", "doctype", "bom-space-upper-html", "body-tag-in-first-kib", "txt", "no-name", "md", "markdown",
         "utf8-md", "bom-text", "pdf-named-md"],
)  # fmt: skip
def test_the_type_is_sniffed_from_the_bytes_and_only_markdown_needs_the_name(
    data: bytes, filename: str | None, expected: str
) -> None:
    assert sniff_content_type(data, filename) == expected


def test_an_html_tag_after_the_first_kib_does_not_make_text_html() -> None:
    assert sniff_content_type(b"x" * 1100 + b"<body>", "a.txt") == TEXT


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "pages"),
    [
        (PROSE.encode(), "a.txt", TEXT, 1),
        (b"# Title\n\nSome *markdown* text.\n", "a.md", MARKDOWN, 1),
        (b"<html><body><h1>T</h1><p>Body text.</p></body></html>", "a.html", HTML, 1),
        (docx(["One", PAGE_BREAK, "Two", PAGE_BREAK, "Three"], app_pages=3), "a.docx", DOCX, 3),
        (docx(["No app.xml part"]), "a.docx", DOCX, 1),
    ],
    ids=["text", "markdown", "html", "docx-with-app-pages", "docx-without-app-xml"],
)
def test_accepted_types_are_stored_with_their_media_type_and_page_count(
    data: bytes, filename: str, content_type: str, pages: int
) -> None:
    result = validate_upload(data, filename=filename, **LIMITS)
    assert (result.content_type, result.pages) == (content_type, pages)


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 8,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        zip_of({"a.txt": "not a word document"}),
        zip_of({"[Content_Types].xml": "<Types/>"}),
        b"PK\x03\x04 a truncated zip",
        "latin-1 caf\xe9 is not UTF-8\n".encode("latin-1"),
        b"text with a NUL\0 byte in it\n",
        b"\x1b[31m\x07" * 50 + b"mostly terminal control codes",
        "UTF-16 text".encode("utf-16"),
    ],
    ids=["binary-junk", "png", "zip-not-docx", "zip-without-main-part", "broken-zip", "invalid-utf8", "nul",
         "controls", "utf16"],
)  # fmt: skip
def test_files_of_other_types_are_unsupported_with_the_accepted_list(data: bytes) -> None:
    with pytest.raises(UnsupportedFileType) as caught:
        validate_upload(data, filename="upload.txt", **LIMITS)
    assert caught.value.status == 415
    assert caught.value.extra["accepted"] == [PDF, DOCX, HTML, MARKDOWN, TEXT]


def test_a_zip_with_too_many_entries_is_refused_before_its_directory_is_parsed() -> None:
    crowded = zip_of(
        {"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>"}
        | {f"f{i}": b"" for i in range(DOCX_MAX_ENTRIES)}
    )
    assert zip_entry_count(crowded) == DOCX_MAX_ENTRIES + 2
    with pytest.raises(UnsupportedFileType):
        validate_upload(crowded, **LIMITS)


def test_a_docx_declaring_a_huge_uncompressed_size_is_refused_as_a_zip_bomb() -> None:
    bomb = with_declared_size(docx(["tiny"]), "word/document.xml", DOCX_MAX_UNPACKED_BYTES + 1)
    with pytest.raises(InvalidDocx) as caught:
        validate_upload(bomb, **LIMITS)
    assert caught.value.status == 422
    assert "bytes unpacked" in caught.value.extra["reason"]


def test_a_docx_whose_main_part_is_damaged_is_refused_with_the_reason() -> None:
    damaged = with_declared_size(docx(["some text that will not match its CRC"]), "word/document.xml", 10)
    with pytest.raises(InvalidDocx) as caught:
        validate_upload(damaged, **LIMITS)
    assert caught.value.type_ == "invalid-docx"
    assert caught.value.extra["reason"]


def test_a_docx_over_the_page_limit_is_refused() -> None:
    with pytest.raises(TooManyPages) as caught:
        validate_upload(docx(["long"], app_pages=2001), **LIMITS)
    assert caught.value.extra == {"pages": 2001, "max_pages": 2000}


def test_text_of_only_white_space_is_refused_as_empty() -> None:
    with pytest.raises(EmptyFile):
        validate_upload(b"\xef\xbb\xbf \n\t\r\n", filename="blank.md", **LIMITS)


def test_text_over_the_size_limit_is_refused() -> None:
    with pytest.raises(FileTooLarge):
        validate_upload(b"a" * 101, max_bytes=100, max_pages=10)


def test_the_real_pdf_corpus_is_still_sniffed_as_pdf() -> None:
    sample = (SHARED_DATA / "pdfs" / "docling_multi_page.pdf").read_bytes()
    assert sniff_content_type(sample, "slides.md") == PDF


@pytest.mark.parametrize(
    ("make", "filename"),
    [(lambda n: b"a" * n, "long.txt"), (lambda n: docx(["a" * n]), "long.docx")],
    ids=["text", "docx"],
)
def test_text_longer_than_max_pages_times_3000_characters_is_refused(make, filename: str) -> None:  # type: ignore[no-untyped-def]
    assert validate_upload(make(6000), filename=filename, max_bytes=10**6, max_pages=2).pages == 1
    with pytest.raises(TooManyPages) as caught:
        validate_upload(make(6001), filename=filename, max_bytes=10**6, max_pages=2)
    assert caught.value.extra == {"chars": 6001, "max_chars": 6000}
