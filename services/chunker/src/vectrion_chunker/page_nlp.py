"""spaCy over a whole PDF page at once instead of one text box at a time.

unstructured classifies every text box of a page (NarrativeText, Title, ...) with spaCy:
sentence counts and part-of-speech tags, one ``nlp(text)`` call per box. Called one by one,
the model's fixed cost per call dominates (boxes are short): on the 27 text PDFs of the
ingestion benchmark that was about a fifth of extraction. Run over a page's boxes with
``nlp.pipe`` (one batched pass, the same model and components), the same documents come out
several times faster, and unstructured's heuristics read them exactly as before.

:func:`install` wraps unstructured's per-page builder so that, before it classifies a page,
the page's box texts go through ``nlp.pipe``; unstructured's ``_process`` (the one function
its ``sent_tokenize``, ``pos_tag`` and ``word_tokenize`` get their spaCy ``Doc`` from) then
finds them ready. A text the page did not predict (unstructured reworded it) is processed on
its own, as before. The prepared docs live in a thread-local for the page only: extraction
threads never see each other's pages, and nothing outlives the page.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

_page = threading.local()


def install() -> None:
    """Patch unstructured (once per process; the caller holds the patch lock)."""
    import unstructured.nlp.tokenize as tokenize
    import unstructured.partition.pdf as pdf

    tokenize._process = _prepared_first(tokenize._process)  # type: ignore[assignment]
    pdf._pdfminer_page_elements = _with_page_prepared(pdf._pdfminer_page_elements, tokenize._get_nlp)


def _prepared_first(process: Callable[[str], Any]) -> Callable[[str], Any]:
    @functools.wraps(process)
    def lookup(text: str) -> Any:
        prepared: dict[str, Any] | None = getattr(_page, "docs", None)
        if prepared is not None:
            doc = prepared.get(str(text))
            if doc is not None:
                return doc
        return process(text)

    return lookup


def _with_page_prepared(build_page: Callable[..., Any], get_nlp: Callable[[], Any]) -> Callable[..., Any]:
    @functools.wraps(build_page)
    def build(page: Any, page_layout: Any, *args: Any, **kwargs: Any) -> Any:
        texts = page_texts(page_layout)
        if not texts:
            return build_page(page, page_layout, *args, **kwargs)
        nlp = get_nlp()
        _page.docs = dict(zip(texts, nlp.pipe(texts), strict=True))
        try:
            return build_page(page, page_layout, *args, **kwargs)
        finally:
            _page.docs = None

    return build


def page_texts(page_layout: Any) -> list[str]:
    """The texts unstructured will run spaCy on for this page: each text box (or paragraph of
    a figure's text), de-duplicated and whitespace-cleaned as its page builder does, less those
    its ``element_from_text`` settles before any spaCy call (header/footer position, bullets,
    e-mail, address, numbered list, numbers), decided by unstructured's own functions."""
    from unstructured.cleaners.core import clean_extra_whitespace_with_index_run
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.nlp.patterns import PARAGRAPH_PATTERN
    from unstructured.partition import pdf as unstructured_pdf
    from unstructured.partition.pdf_image.pdfminer_utils import get_text_with_deduplication, rect_to_bbox
    from unstructured.partition.utils.config import env_config

    height = page_layout.height
    system = PixelSpace(width=page_layout.width, height=height)
    texts: dict[str, None] = {}
    for obj in page_layout:
        if hasattr(obj, "get_text"):
            snippets = [get_text_with_deduplication(obj, env_config.PDF_CHAR_DUPLICATE_THRESHOLD)]
        else:  # a figure: its text, split into paragraphs
            snippets = re.split(PARAGRAPH_PATTERN, unstructured_pdf._extract_text(obj))
        x1, y1, x2, y2 = rect_to_bbox(obj.bbox, height)
        points = ((x1, y1), (x1, y2), (x2, y2), (x2, y1))
        for snippet in snippets:
            text, _ = clean_extra_whitespace_with_index_run(snippet)
            if text.strip() and len(text) <= _MAX_CHARS and _classified_by_spacy(text, points, system):
                texts[text] = None
    return list(texts)


def _classified_by_spacy(text: str, points: Any, system: Any) -> bool:
    from unstructured.partition import text as partition_text
    from unstructured.partition import text_type

    settled_before = (
        partition_text._is_in_header_position(points, system)
        or partition_text._is_in_footer_position(points, system)
        or text_type.is_bulleted_text(text)
        or text_type.is_email_address(text)
        or text_type.is_us_city_state_zip(text)
        or text_type.is_possible_numbered_list(text)
        or text.isnumeric()
    )
    return not settled_before


# Longer texts are rare (a box is a paragraph) and would be processed in one piece anyway.
_MAX_CHARS = 8192
