"""What an upload is, decided from its bytes (never from the client's claimed media type).

Accepted, checked in this order:

* PDF: ``%PDF-`` within the first KiB (readers accept console junk before it).
* DOCX: a ZIP whose central directory lists ``[Content_Types].xml`` and
  ``word/document.xml``. Before :mod:`zipfile` parses the directory, the entry
  count in the end-of-central-directory record is checked, so a ZIP of a
  million entries costs nothing.
* HTML: after an optional BOM and whitespace the text starts with
  ``<!doctype html`` or ``<html`` (any case), or an ``<html``/``<body`` tag
  appears in the first KiB.
* Plain text and Markdown: valid UTF-8 (BOM allowed), no NUL byte, at most 1 %
  control characters besides tab, newline, carriage return and form feed.
  Markdown and plain text cannot be told apart reliably from the bytes, so the
  file name decides: ``.md`` / ``.markdown`` is Markdown, anything else plain text.

Everything else is unsupported (415).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import PurePosixPath

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"
ACCEPTED = (PDF, DOCX, HTML, MARKDOWN, TEXT)

PDF_MAGIC = b"%PDF-"
# Readers (Acrobat, pdf.js, pypdf) accept a header anywhere in the first KiB:
# real files carry console junk before it (see pdfplumber_issue-848.pdf).
HEADER_WINDOW = 1024
ZIP_MAGIC = b"PK\x03\x04"
DOCX_REQUIRED_ENTRIES = frozenset({"[Content_Types].xml", "word/document.xml"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
UTF8_BOM = b"\xef\xbb\xbf"
HTML_START = re.compile(rb"^\s*<(!doctype\s+html|html)[\s>]", re.IGNORECASE)
HTML_TAG = re.compile(rb"<(html|body)[\s>]", re.IGNORECASE)
# C0/C1 controls except the ones plain text legitimately carries (tab, newline, form feed, carriage return).
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
MAX_CONTROL_SHARE = 0.01

# End of central directory: signature, then (after 6 bytes) the total entry count.
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_MIN_SIZE = 22
_EOCD_SEARCH = _EOCD_MIN_SIZE + 0xFFFF  # the record ends the file, after a comment of at most 64 KiB


def sniff_content_type(data: bytes, filename: str | None = None, *, max_zip_entries: int = 10_000) -> str | None:
    """The media type the bytes themselves prove, or None; ``filename`` only splits Markdown from text."""
    head = data[:HEADER_WINDOW]
    if PDF_MAGIC in head:
        return PDF
    if data.startswith(ZIP_MAGIC):
        return DOCX if is_docx(data, max_zip_entries) else None
    if is_html(head):
        return HTML
    if is_text(data):
        suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()
        return MARKDOWN if suffix in MARKDOWN_SUFFIXES else TEXT
    return None


def is_docx(data: bytes, max_entries: int) -> bool:
    """A ZIP listing the two parts every WordprocessingML package has (no entry is decompressed here)."""
    entries = zip_entry_count(data)
    if entries is None or entries > max_entries:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return False
    return names >= DOCX_REQUIRED_ENTRIES


def zip_entry_count(data: bytes) -> int | None:
    """The entry count the end-of-central-directory record declares; None if there is none.

    A ZIP64 archive says 0xFFFF here: that count is reported as is, above any sane limit.
    """
    at = data.rfind(_EOCD_SIGNATURE, max(len(data) - _EOCD_SEARCH, 0))
    if at < 0 or len(data) - at < _EOCD_MIN_SIZE:
        return None
    (total,) = struct.unpack_from("<H", data, at + 10)
    return int(total)


def is_html(head: bytes) -> bool:
    if b"\0" in head:
        return False
    text = _strip_bom(head)
    return bool(HTML_START.match(text) or HTML_TAG.search(text))


def is_text(data: bytes) -> bool:
    """Valid UTF-8 (BOM allowed), no NUL, control characters at most 1 % of the characters."""
    if b"\0" in data:
        return False
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return len(CONTROL_CHARACTER.findall(text)) <= MAX_CONTROL_SHARE * len(text)


def _strip_bom(data: bytes) -> bytes:
    return data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
