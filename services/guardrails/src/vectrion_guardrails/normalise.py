"""Text normalisation applied before any rule looks at the text.

Obfuscation that changes how text is encoded but not what it says is undone
here once, so no rule has to think about it: compatibility forms (fullwidth
letters, ligatures, circled digits) fold under NFKC, and invisible characters
(zero-width, bidi controls, soft hyphens, Unicode tag characters used for
"ASCII smuggling") are removed. Homoglyphs from other scripts (Cyrillic U+0430
for Latin "a") are NOT folded: NFKC leaves them alone and this rule set does
not attempt a confusables map.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile(
    "["
    "\u00ad"  # soft hyphen
    "\u034f"  # combining grapheme joiner
    "\u061c"  # arabic letter mark
    "\u115f\u1160\u3164\uffa0"  # hangul fillers
    "\u180e"  # mongolian vowel separator
    "\u200b-\u200f"  # zero-width space/joiners, LRM/RLM
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u2064"  # word joiner, invisible operators
    "\u2066-\u2069"  # bidi isolates
    "\ufeff"  # zero-width no-break space / BOM
    "\U000e0000-\U000e007f"  # tag characters
    "]"
)
_WHITESPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """NFKC with invisible characters removed; layout (newlines, spacing) is kept."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def for_matching(text: str) -> str:
    """What pattern rules match against: folded, case-folded, whitespace collapsed to one space."""
    return _WHITESPACE.sub(" ", fold(text).casefold()).strip()
