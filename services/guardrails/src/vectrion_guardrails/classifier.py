"""Small linear text classifiers trained by us (see bench/guardrails/train.py).

Features are hashed: character 3-5-grams of the matching-normalised text and
its word uni- and bigrams, each hashed with CRC-32 into ``dimension`` buckets,
sublinear term frequency, L2-normalised. A logistic regression over them gives
a probability. Hashing means the model is just a weight vector (no vocabulary
to ship), small enough to commit, and scoring is pure Python + one numpy dot
product: no model download, no torch.

Training and scoring share :func:`features`, so they cannot drift apart.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

FEATURE_VERSION = 1
DEFAULT_DIMENSION = 2**15
# Scoring is bounded: a long document chunk is classified on its first part.
MAX_CHARS = 2_000
_WORD = re.compile(r"\w+")


def features(text: str, dimension: int) -> dict[int, float]:
    """Hashed, sublinear-tf, L2-normalised features of already normalised text."""
    text = text[:MAX_CHARS]
    counts: Counter[str] = Counter()
    padded = f" {text} "
    for n in (3, 4, 5):
        counts.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    words = _WORD.findall(text)
    counts.update("w:" + w for w in words)
    counts.update(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    buckets: dict[int, float] = {}
    for gram, count in counts.items():
        index = zlib.crc32(gram.encode()) % dimension
        buckets[index] = buckets.get(index, 0.0) + 1.0 + math.log(count)
    norm = math.sqrt(sum(v * v for v in buckets.values())) or 1.0
    return {k: v / norm for k, v in buckets.items()}


@dataclass(frozen=True, slots=True)
class LinearModel:
    name: str
    weights: npt.NDArray[np.float32]
    bias: float
    threshold: float
    meta: dict[str, Any]

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[0])

    def score(self, text: str) -> float:
        feats = features(text, self.dimension)
        if not feats:
            return 0.0
        index = np.fromiter(feats.keys(), dtype=np.int64, count=len(feats))
        value = np.fromiter(feats.values(), dtype=np.float32, count=len(feats))
        z = float(self.weights[index] @ value) + self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


def save(
    path: str, name: str, weights: npt.NDArray[np.float32], bias: float, threshold: float, meta: dict[str, Any]
) -> None:
    np.savez_compressed(
        path,
        weights=weights.astype(np.float32),
        bias=np.array([bias], dtype=np.float32),
        threshold=np.array([threshold], dtype=np.float32),
        meta=np.array(json.dumps({"name": name, "feature_version": FEATURE_VERSION, **meta}, sort_keys=True)),
    )


def load(name: str) -> LinearModel:
    """The committed model ``models/<name>.npz`` inside this package."""
    with resources.files("vectrion_guardrails").joinpath("models", f"{name}.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        if meta.get("feature_version") != FEATURE_VERSION:
            raise RuntimeError(f"model {name} was trained on feature version {meta.get('feature_version')}")
        return LinearModel(
            name=name,
            weights=data["weights"].astype(np.float32),
            bias=float(data["bias"][0]),
            threshold=float(data["threshold"][0]),
            meta=meta,
        )
