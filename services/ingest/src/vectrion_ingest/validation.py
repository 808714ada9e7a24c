"""Upload validation: size, type by magic bytes, the PDF opens, is not locked, has sane page count.

Plain code over bytes; the API calls :func:`validate_upload` in a worker thread
because parsing is CPU-bound.
"""

from __future__ import annotations

import io
import logging
import unicodedata
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader

from vectrion_ingest.errors import (
    EmptyFile,
    EncryptedPdf,
    FileTooLarge,
    InvalidPdf,
    TooManyPages,
    UnsupportedFileType,
)

PDF_MEDIA_TYPE = "application/pdf"
PDF_MAGIC = b"%PDF-"
# Readers (Acrobat, pdf.js, pypdf) accept a header anywhere in the first KiB:
# real files carry console junk before it (see pdfplumber_issue-848.pdf).
PDF_HEADER_WINDOW = 1024
MAX_FILENAME_CHARS = 255

# pypdf logs every recoverable oddity at WARNING; those are not ours to report.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class ValidatedUpload:
    content_type: str
    pages: int


def sniff_content_type(data: bytes) -> str | None:
    """The media type the bytes themselves prove, whatever the client claimed."""
    if PDF_MAGIC in data[:PDF_HEADER_WINDOW]:
        return PDF_MEDIA_TYPE
    return None


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise FileTooLarge(f"the file exceeds the limit of {max_bytes} bytes", max_bytes=max_bytes)


def validate_upload(data: bytes, *, max_bytes: int, max_pages: int) -> ValidatedUpload:
    check_size(len(data), max_bytes)
    if not data:
        raise EmptyFile("the uploaded file has no content")
    content_type = sniff_content_type(data)
    if content_type != PDF_MEDIA_TYPE:
        raise UnsupportedFileType("only PDF files are accepted", accepted=[PDF_MEDIA_TYPE])
    pages = count_pdf_pages(data)
    if pages > max_pages:
        raise TooManyPages(f"the PDF has {pages} pages; the limit is {max_pages}", pages=pages, max_pages=max_pages)
    return ValidatedUpload(content_type=content_type, pages=pages)


def count_pdf_pages(data: bytes) -> int:
    """Open the PDF as the chunker will; a file that cannot be opened is rejected now, not later."""
    try:
        reader = PdfReader(io.BytesIO(data))
        # An empty user password (owner-only protection) opens without asking anyone.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise EncryptedPdf("the PDF needs a password to open; upload an unencrypted copy")
        pages = len(reader.pages)
    except EncryptedPdf:
        raise
    # A broken file can fail anywhere inside the parser, with any exception type.
    except Exception as exc:
        raise InvalidPdf("the PDF cannot be opened", reason=f"{type(exc).__name__}: {exc}") from exc
    if pages == 0:
        raise InvalidPdf("the PDF has no pages", reason="no pages")
    return pages


def clean_filename(name: str | None) -> str:
    """The last path segment, without control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:MAX_FILENAME_CHARS] or "document.pdf"
