from __future__ import annotations

from vectrion_chunker.cleaning import Block, clean_elements, clean_text, fix_hyphenation
from vectrion_chunker.extraction import ExtractedElement


def test_words_broken_at_a_line_end_are_joined() -> None:
    assert fix_hyphenation("a dif-\nficult case") == "a difficult case"
    # unstructured joins a paragraph's lines with spaces: "com- pile"
    assert fix_hyphenation("difficult to com- pile than") == "difficult to compile than"


def test_real_hyphens_and_suspended_hyphens_are_kept() -> None:
    assert fix_hyphenation("a well-known result") == "a well-known result"
    assert fix_hyphenation("pre- and post-processing") == "pre- and post-processing"
    assert fix_hyphenation("pages 10 - 12") == "pages 10 - 12"


def test_whitespace_and_ligatures_are_normalised() -> None:
    assert clean_text("  ﬁrst\t\tline  \n\n\n  second\u00a0line ") == "first line\nsecond line"


def test_page_furniture_and_empty_elements_are_dropped() -> None:
    elements = [
        ExtractedElement("Header", "ACME Corp — Annual Report", 1),
        ExtractedElement("Title", "Introduction", 1),
        ExtractedElement("NarrativeText", "Some   body text.", 1),
        ExtractedElement("Footer", "Confidential", 1),
        ExtractedElement("PageNumber", "1", 1),
        ExtractedElement("NarrativeText", "   ", 2),
        ExtractedElement("ListItem", "• an item", 2),
        ExtractedElement("Table", "a b\nc d", 2),
    ]
    assert clean_elements(elements) == [
        Block("title", "Introduction", 1),
        Block("text", "Some body text.", 1),
        Block("list_item", "• an item", 2),
        Block("table", "a b\nc d", 2),
    ]
