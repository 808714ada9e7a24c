"""spaCy for unstructured's PDF element classification: batched over pages, parser only where it counts.

unstructured classifies every text box of a page (NarrativeText, Title, ...) with spaCy:
sentence counts (the dependency parser), part-of-speech tags and tokens, one ``nlp(text)`` per
box. Two things make that cheaper here without changing a single category:

* Batching. Before unstructured builds a window of pages, the window's box texts go through
  ``nlp.pipe`` at once (the same model and components; each doc is computed on its own, so a
  batched doc equals a single one). unstructured's ``_process`` (the one function its
  ``sent_tokenize``, ``pos_tag`` and ``word_tokenize`` get their ``Doc`` from) then finds them
  ready. A text the window did not predict (unstructured rewords it) is processed on its own.
* No parser where the sentence count cannot matter. ``is_possible_narrative_text`` asks first
  for the sentence count (``exceeds_cap_ratio``), yet for a text that has a verb, no excess of
  capitalised words and enough letters, every branch ends in NarrativeText whatever the count
  is (:func:`narrative_without_sentences`). Tagging needs only tok2vec and the tagger; the
  parser reads tok2vec's output from ``doc.tensor`` when it runs later, so a doc parsed after
  tagging is the doc the full pipeline makes. Such texts are decided from the tagged doc; every
  other text is parsed (in one batch) before unstructured sees it, and a doc handed to
  unstructured is always complete (:meth:`_PreparedDocs.complete`).

The prepared docs live in a thread-local for the window only: extraction threads never see each
other's pages, and nothing outlives the window.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

_local = threading.local()

# Pages whose box texts go through spaCy together: bigger batches cost less per text, and the
# window's pdfminer layouts are held in memory until its pages are built.
WINDOW_PAGES = 8

# unstructured reads these at call time to move its thresholds; the shortcut below assumes the
# defaults, so it steps aside when any is set (they are unstructured's knobs, not our settings).
_UNSTRUCTURED_KNOBS = (
    "UNSTRUCTURED_LANGUAGE_CHECKS",
    "UNSTRUCTURED_NARRATIVE_TEXT_CAP_THRESHOLD",
    "UNSTRUCTURED_NARRATIVE_TEXT_NON_ALPHA_THRESHOLD",
    "UNSTRUCTURED_TITLE_NON_ALPHA_THRESHOLD",
)
_DEFAULT_THRESHOLD = 0.5  # cap_threshold and both non_alpha_thresholds of unstructured's text_type


def install() -> None:
    """Patch unstructured (once per process; the caller holds the patch lock)."""
    import unstructured.nlp.tokenize as tokenize
    import unstructured.partition.pdf as pdf
    import unstructured.partition.text as partition_text

    tokenize._process = _prepared_first(tokenize._process)  # type: ignore[assignment]
    # Both are names these modules import from elsewhere: replaced where the PDF path looks them up.
    pdf.open_pdfminer_pages_generator = _with_windows_prepared(  # type: ignore[attr-defined]
        pdf.open_pdfminer_pages_generator,  # type: ignore[attr-defined]
        tokenize._get_nlp,
    )
    partition_text.is_possible_narrative_text = _settled_without_sentences_first(  # type: ignore[attr-defined]
        partition_text.is_possible_narrative_text  # type: ignore[attr-defined]
    )


class _PreparedDocs:
    """The spaCy docs of a window's texts: all tagged, parsed unless the parse cannot matter."""

    def __init__(self, nlp: Any, texts: list[str]) -> None:
        self._parser = nlp.get_pipe("parser")
        self._docs = dict(zip(texts, nlp.pipe(texts, disable=["parser"]), strict=True))
        self._unparsed = {text for text, doc in self._docs.items() if _settled(text, doc) is not None}
        for _ in self._parser.pipe(doc for text, doc in self._docs.items() if text not in self._unparsed):
            pass  # annotates the docs in place

    def tagged(self, text: str) -> Any | None:
        """Tokens and tags (the parse may be missing): for :func:`narrative_without_sentences` only."""
        return self._docs.get(text)

    def complete(self, text: str) -> Any | None:
        """The doc the full pipeline would make, or None for a text not prepared."""
        doc = self._docs.get(text)
        if doc is not None and text in self._unparsed:
            self._parser(doc)
            self._unparsed.discard(text)
        return doc


def _prepared_first(process: Callable[[str], Any]) -> Callable[[str], Any]:
    @functools.wraps(process)
    def lookup(text: str) -> Any:
        prepared: _PreparedDocs | None = getattr(_local, "window", None)
        if prepared is not None:
            doc = prepared.complete(str(text))
            if doc is not None:
                return doc
        return process(text)

    return lookup


def _with_windows_prepared(
    open_pages: Callable[..., Generator[tuple[Any, Any], None, None]], get_nlp: Callable[[], Any]
) -> Callable[..., Iterator[tuple[Any, Any]]]:
    @functools.wraps(open_pages)
    def pages(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
        source = open_pages(*args, **kwargs)
        try:
            while window := list(itertools.islice(source, WINDOW_PAGES)):
                texts = list(dict.fromkeys(text for _, layout in window for text in page_texts(layout)))
                _local.window = _PreparedDocs(get_nlp(), texts) if texts else None
                try:
                    yield from window
                finally:
                    _local.window = None
        finally:
            source.close()  # a reader that stops early: pdfminer's temporary directory goes at once

    return pages


def _settled_without_sentences_first(is_narrative: Callable[..., bool]) -> Callable[..., bool]:
    @functools.wraps(is_narrative)
    def classify(text: str, *args: Any, **kwargs: Any) -> bool:
        if not args and not kwargs:  # element_from_text's call: unstructured's default thresholds
            settled = narrative_without_sentences(text, _tagged_doc)
            if settled is not None:
                return settled
        return is_narrative(text, *args, **kwargs)

    return classify


def _tagged_doc(text: str) -> Any:
    import unstructured.nlp.tokenize as tokenize

    prepared: _PreparedDocs | None = getattr(_local, "window", None)
    doc = prepared.tagged(text) if prepared is not None else None
    return doc if doc is not None else tokenize._process(text)


def _settled(text: str, doc: Any) -> bool | None:
    return narrative_without_sentences(text, lambda _: doc)


def narrative_without_sentences(text: str, tagged_doc: Callable[[str], Any]) -> bool | None:
    """What unstructured's ``is_possible_narrative_text(text)`` answers, when the answer does not
    depend on the sentence count; None when it might (then ask unstructured).

    In unstructured's order: empty or numeric -> False (left to it, it settles them without
    spaCy); ``exceeds_cap_ratio`` -> False (with two sentences or more it is False, with one it
    is ``isupper`` or the share of capitalised alphabetic tokens above the threshold);
    ``under_non_alpha_ratio`` -> False; fewer than two sentences and no verb -> False; else True.
    So: too few letters is False in every branch; letters enough, not all upper case, at most
    the threshold of capitalised tokens and a verb tag is True in every branch.
    """
    from unstructured.partition.text_type import POS_VERB_TAGS, under_non_alpha_ratio

    if any(knob in os.environ for knob in _UNSTRUCTURED_KNOBS):
        return None
    if not text or text.isnumeric():
        return None
    if under_non_alpha_ratio(text, threshold=_DEFAULT_THRESHOLD):
        return False
    if text.isupper():
        return None
    doc = tagged_doc(text)
    words = [token.text for token in doc if token.text.isalpha()]  # word_tokenize's alphabetic tokens
    if not words:
        return None
    capitalised = sum(word.istitle() or word.isupper() for word in words)
    if capitalised / len(words) > _DEFAULT_THRESHOLD:
        return None
    if any(token.tag_ in POS_VERB_TAGS for token in doc):  # contains_verb (the text is not upper case)
        return True
    return None


def page_texts(page_layout: Any) -> list[str]:
    """The texts unstructured will run spaCy on for this page: each text box (or paragraph of
    a figure's text), de-duplicated and whitespace-cleaned as its page builder does, less those
    its ``element_from_text`` settles before any spaCy call (header/footer position, bullets,
    e-mail, address, numbered list, numbers, too few letters), decided by unstructured's own
    functions."""
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
        # not narrative (narrative_without_sentences) and, at the same threshold, not a title
        or text_type.under_non_alpha_ratio(text, threshold=_DEFAULT_THRESHOLD)
    )
    return not settled_before


# Longer texts are rare (a box is a paragraph) and would be processed in one piece anyway.
_MAX_CHARS = 8192
