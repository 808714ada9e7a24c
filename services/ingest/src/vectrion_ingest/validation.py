"""Upload validation: size, type by content, the file opens, is not locked, has a sane page count.

Accepted types and how they are recognised: :mod:`vectrion_ingest.file_types`.
What "pages" means per type:

* PDF: the page count pypdf reads.
* DOCX: ``<Pages>`` of ``docProps/app.xml`` (Word's count when it last saved
  the file) when present, else 1.
* HTML, Markdown, plain text: 1 (they have no pages).

The size limit (``max_upload_bytes``) applies to every type, the page limit
(``max_pages``) to PDF and DOCX, and a text limit of ``max_pages`` x
:data:`CHARS_PER_PAGE` characters to DOCX (its text runs), HTML, Markdown and
plain text (the whole file): their extraction costs about what a PDF of that
many pages costs. A DOCX is a ZIP: at most :data:`DOCX_MAX_ENTRIES` entries and
:data:`DOCX_MAX_UNPACKED_BYTES` declared uncompressed bytes, and its main part
must decompress (bounded by its declared size, CRC checked), so a zip bomb is
refused before anything inflates it.

Plain code over bytes; the API calls :func:`validate_upload` in a worker thread
because parsing is CPU-bound.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader

from vectrion_ingest import file_types
from vectrion_ingest.errors import (
    EmptyFile,
    EncryptedPdf,
    FileTooLarge,
    InvalidDocx,
    InvalidPdf,
    TooManyPages,
    UnsupportedFileType,
)
from vectrion_ingest.file_types import PDF, sniff_content_type

PDF_MEDIA_TYPE = PDF
MAX_FILENAME_CHARS = 255
# Text formats and DOCX may hold at most max_pages "pages" of this many characters.
CHARS_PER_PAGE = 3000
DOCX_MAX_ENTRIES = 10_000
DOCX_MAX_UNPACKED_BYTES = 256 * 1024 * 1024
DOCX_MAIN_PART = "word/document.xml"
DOCX_APP_PART = "docProps/app.xml"
_TEXT_RUN = re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>")
_APP_PAGES = re.compile(rb"<(?:\w+:)?Pages>\s*(\d{1,9})\s*</(?:\w+:)?Pages>")

# pypdf logs every recoverable oddity at WARNING; those are not ours to report.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class ValidatedUpload:
    content_type: str
    pages: int


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise FileTooLarge(f"the file exceeds the limit of {max_bytes} bytes", max_bytes=max_bytes)


def validate_upload(data: bytes, *, max_bytes: int, max_pages: int, filename: str | None = None) -> ValidatedUpload:
    """``filename`` only tells Markdown (``.md``, ``.markdown``) from plain text; the bytes decide the rest."""
    check_size(len(data), max_bytes)
    if not data:
        raise EmptyFile("the uploaded file has no content")
    content_type = sniff_content_type(data, filename, max_zip_entries=DOCX_MAX_ENTRIES)
    match content_type:
        case file_types.PDF:
            pages, chars = count_pdf_pages(data), 0
        case file_types.DOCX:
            pages, chars = inspect_docx(data)
        case file_types.HTML | file_types.MARKDOWN | file_types.TEXT:
            text = data.decode("utf-8", errors="replace")
            if not text.strip("\ufeff \t\r\n\f\v"):
                raise EmptyFile("the uploaded file has only white space")
            pages, chars = 1, len(text)
        case _:
            raise UnsupportedFileType(
                "accepted: PDF, DOCX, HTML, Markdown and UTF-8 plain text", accepted=list(file_types.ACCEPTED)
            )
    if pages > max_pages:
        raise TooManyPages(
            f"the document has {pages} pages; the limit is {max_pages}", pages=pages, max_pages=max_pages
        )
    max_chars = max_pages * CHARS_PER_PAGE
    if chars > max_chars:
        raise TooManyPages(
            f"the document has {chars} characters; the limit is {max_chars} ({CHARS_PER_PAGE} per allowed page)",
            chars=chars,
            max_chars=max_chars,
        )
    return ValidatedUpload(content_type=content_type, pages=pages)


def inspect_docx(data: bytes) -> tuple[int, int]:
    """Refuse a DOCX that would unpack too large or is damaged; (pages, characters of its main text).

    Pages: docProps/app.xml's ``<Pages>`` when present, else 1. Characters: the
    text of the main part's ``<w:t>`` runs, counted while the part streams by
    (a run split across two read blocks is missed: an estimate for the limit).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            unpacked = sum(i.file_size for i in infos)
            if len(infos) > DOCX_MAX_ENTRIES or unpacked > DOCX_MAX_UNPACKED_BYTES:
                raise InvalidDocx(
                    "the DOCX would unpack beyond the limits",
                    reason=f"{len(infos)} entries, {unpacked} bytes unpacked; "
                    f"limits {DOCX_MAX_ENTRIES} entries, {DOCX_MAX_UNPACKED_BYTES} bytes",
                )
            chars = 0
            # zipfile never yields more than the declared size and checks the CRC at the end.
            with archive.open(DOCX_MAIN_PART) as part:
                while block := part.read(1024 * 1024):
                    chars += sum(len(run) for run in _TEXT_RUN.findall(block))
            app = b""
            if DOCX_APP_PART in archive.namelist():
                with archive.open(DOCX_APP_PART) as part:
                    app = part.read(64 * 1024)
    except InvalidDocx:
        raise
    # A broken archive fails inside zipfile or zlib with several exception types.
    except Exception as exc:
        raise InvalidDocx("the DOCX cannot be opened", reason=f"{type(exc).__name__}: {exc}") from exc
    found = _APP_PAGES.search(app)
    return (max(int(found.group(1)), 1) if found else 1), chars


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
