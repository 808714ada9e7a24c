# ruff: noqa: RUF001, RUF002 -- lookalike characters are the subject of this file
"""Text normalisation applied before any rule or model looks at the text.

Obfuscation that changes how text is encoded but not what it says is undone
here once, so no rule has to think about it:

- ``fold``: NFKC (fullwidth letters, ligatures, circled digits) and removal of
  invisible characters (zero-width, bidi controls, soft hyphens, Unicode tag
  characters used for "ASCII smuggling"). Layout is kept: this is also the text
  that redaction works on.
- ``for_matching``: folded, homoglyphs from Cyrillic/Greek/symbol blocks mapped
  to the Latin letter they imitate, combining marks stripped ("ïgnörë"),
  case-folded, letter-by-letter spacing ("i g n o r e") and in-word separators
  ("ig.no-re") joined, whitespace collapsed.
- ``views``: extra readings of the text that rules and the classifier also
  score: leetspeak folded ("1gn0r3"), rot13, and the decoded contents of
  base64, hex and percent-encoded spans. A view is only produced when the
  transformation changes something, and decoded spans only when they decode to
  mostly printable text, so ordinary text costs one pass.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
import urllib.parse

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

# Confusables that NFKC leaves alone: lookalikes from Cyrillic, Greek, Armenian
# and a few symbols, mapped to the ASCII letter they imitate. Hand-picked from
# Unicode's confusables.txt (only the ones that pass for Latin in common fonts).
_HOMOGLYPHS = {
    # Cyrillic lower/upper
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ɡ": "g", "ո": "n", "ս": "u", "օ": "o", "ց": "g", "Ꭵ": "i",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "Х": "x", "У": "y", "Ѕ": "s", "І": "i", "Ј": "j", "Ԁ": "d", "Ԛ": "q", "Ԝ": "w",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
    "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Latin lookalikes outside ASCII that NFKC keeps
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e",
    "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
    "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)

_MIXED_SCRIPT_WORD = re.compile(r"[^\W\d_]*[^\W\d_a-zA-Z][^\W\d_]*")


def _fold_homoglyphs(m: re.Match[str]) -> str:
    """Only words that mix scripts ("іgnore" with a Cyrillic і): real Russian or Greek words keep their letters."""
    word = m.group()
    if any("a" <= c.lower() <= "z" for c in word):
        return word.translate(_HOMOGLYPH_TABLE)
    return word


_LEET_TABLE = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_HAS_LEET = re.compile(r"[a-z][0-9@$!]|[0-9@$!][a-z]")

# "i g n o r e" / "i-g-n-o-r-e" / "i.g.n.o.r.e": three or more single characters joined by one separator.
_SPACED_LETTERS = re.compile(r"(?<![^\s])(?:[^\s][ ._*/|-]){2,}[^\s](?![^\s])")
# "ig.nore", "in*struc*tions": separators inside a word between letter groups.
_IN_WORD_SEPARATOR = re.compile(r"(?<=[a-z])[._*|](?=[a-z])")

_BASE64_SPAN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX_SPAN = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}[ :]?){8,}(?![0-9a-fA-F])")
_PERCENT_SPAN = re.compile(r"(?:%[0-9a-fA-F]{2}[^%\s]{0,3}){4,}")
_ROT13_HINT = re.compile(r"\brot-?13\b|\bcaesar\b")


def fold(text: str) -> str:
    """NFKC with invisible characters removed; layout (newlines, spacing) is kept."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def _strip_marks(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def for_matching(text: str) -> str:
    """What pattern rules match against (see the module docstring)."""
    folded = fold(text)
    if not folded.isascii():
        folded = _strip_marks(_MIXED_SCRIPT_WORD.sub(_fold_homoglyphs, folded))
    # Join spaced-out letters before collapsing whitespace: "i g n o r e  a l l" keeps its word gap.
    lowered = _SPACED_LETTERS.sub(lambda m: re.sub(r"[ ._*/|-]", "", m.group()), folded.casefold())
    lowered = _WHITESPACE.sub(" ", lowered).strip()
    return _IN_WORD_SEPARATOR.sub("", lowered)


def _printable_share(decoded: str) -> float:
    return sum(c.isprintable() or c.isspace() for c in decoded) / max(len(decoded), 1)


def _decode_base64(span: str) -> str | None:
    if not re.search(r"[0-9+/]|[A-Z].*[a-z]|[a-z].*[A-Z]", span):
        return None  # a long plain word, not base64
    try:
        raw = base64.b64decode(span + "=" * (-len(span) % 4), validate=False)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    letters = sum(c.isalpha() for c in decoded)
    if len(decoded) < 8 or _printable_share(decoded) < 0.95 or letters < len(decoded) * 0.5:
        return None
    return decoded


def _decode_hex(span: str) -> str | None:
    digits = re.sub(r"[ :]", "", span)
    try:
        decoded = bytes.fromhex(digits).decode("utf-8")
    except ValueError:
        return None
    letters = sum(c.isalpha() for c in decoded)
    return decoded if _printable_share(decoded) >= 0.95 and letters >= len(decoded) * 0.5 else None


def decoded_spans(text: str) -> list[str]:
    """Contents of base64, hex and percent-encoded spans that decode to readable text."""
    found: list[str] = []
    for m in _BASE64_SPAN.finditer(text):
        if (decoded := _decode_base64(m.group())) is not None:
            found.append(decoded)
    for m in _HEX_SPAN.finditer(text):
        if (decoded := _decode_hex(m.group())) is not None:
            found.append(decoded)
    for m in _PERCENT_SPAN.finditer(text):
        found.append(urllib.parse.unquote(m.group()))
    return found


def views(matching: str, raw: str) -> dict[str, str]:
    """Alternative readings of ``raw`` (``matching`` = ``for_matching(raw)``), keyed by how they were made.

    rot13 is always offered (one ``str.translate``); a rule that fires only on
    the rot13 view is still strong evidence, because plain English read as
    rot13 is gibberish that no injection rule matches.
    """
    out: dict[str, str] = {}
    if _HAS_LEET.search(matching):
        leet = matching.translate(_LEET_TABLE)
        if leet != matching:
            out["leetspeak"] = leet
    out["rot13"] = codecs.encode(matching, "rot13")
    decoded = decoded_spans(fold(raw))
    if decoded:
        out["decoded"] = for_matching(" ".join(decoded))
    return out


def mentions_rot13(matching: str) -> bool:
    return _ROT13_HINT.search(matching) is not None
