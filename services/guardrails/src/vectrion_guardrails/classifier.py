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
from collections.abc import Sequence
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


def _crc32_table() -> npt.NDArray[np.uint32]:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_CRC_TABLE = _crc32_table()
# 1 + log(count), computed by math.log exactly as features() does, for every count a text can have.
_SUBLINEAR = np.array([0.0] + [0.0 + 1.0 + math.log(c) for c in range(1, MAX_CHARS + 3)], dtype=np.float64)
_BATCH_TEXTS = 512  # texts per numpy pass: keeps every packed sort key within 64 bits


def _takes_fast_path(text: str) -> bool:
    # No ':': no character gram can equal a "w:..."/"b:..." word key (features() counts both in one Counter).
    return ":" not in text


Features = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


def features_many(texts: Sequence[str], dimension: int) -> list[Features]:
    """:func:`features` of many texts at once, as (bucket indexes, values) in the dict's order.

    The same buckets, values and order as ``features``, bit for bit: character grams of every
    text are packed (a few bits a character: characters are numbered per batch) and CRC-32-hashed
    over their UTF-8 bytes with numpy, counted per text by one sort, and put in the order a Counter
    first sees them; bucket sums and norms add in that order, so even float rounding is the same.
    Texts the fast path does not take (with ``:``, or a batch with too many distinct characters
    to pack) go through ``features`` itself.
    """
    clipped = [t[:MAX_CHARS] for t in texts]
    out: list[Features | None] = [None] * len(texts)
    fast = []
    for i, t in enumerate(clipped):
        if _takes_fast_path(t):
            fast.append(i)
        else:
            feats = features(t, dimension)
            out[i] = (
                np.fromiter(feats.keys(), dtype=np.int64, count=len(feats)),
                np.fromiter(feats.values(), dtype=np.float64, count=len(feats)),
            )
    for lo in range(0, len(fast), _BATCH_TEXTS):
        part = fast[lo : lo + _BATCH_TEXTS]
        results = _fast_features([clipped[i] for i in part], dimension)
        for k, i in enumerate(part):
            if results is not None:
                out[i] = results[k]
            else:
                feats = features(clipped[i], dimension)
                out[i] = (
                    np.fromiter(feats.keys(), dtype=np.int64, count=len(feats)),
                    np.fromiter(feats.values(), dtype=np.float64, count=len(feats)),
                )
    return [r for r in out if r is not None]


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def _fast_features(texts: list[str], dimension: int) -> list[Features] | None:
    """None: this batch cannot be packed (or encoded); the caller takes the reference path."""
    u64 = np.uint64
    padded = [f" {t} " for t in texts]
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    joined = "".join(padded)
    try:
        joined.encode("utf-8")  # a lone surrogate: features() raises on it, and so does the reference path
        code_points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    except UnicodeEncodeError:
        return None
    # Characters numbered within the batch (so a gram packs into few bits), and their UTF-8 bytes.
    if joined.isascii():
        data = code_points.astype(np.int64)
        char_bits, utf8_len, utf8_bytes = 7, None, None
    else:
        alphabet, inverse = np.unique(code_points, return_inverse=True)
        data = inverse.reshape(-1).astype(np.int64)
        char_bits = _bits(alphabet.shape[0])
        encoded = [chr(c).encode("utf-8") for c in alphabet.tolist()]
        utf8_len = np.array([len(b) for b in encoded], dtype=np.int64)
        utf8_bytes = np.zeros((alphabet.shape[0], 4), dtype=np.uint32)
        for row, b in enumerate(encoded):
            utf8_bytes[row, : len(b)] = list(b)
    total = data.shape[0]
    segment_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    local = np.arange(total, dtype=np.int64) - starts[segment_of]
    room = lengths[segment_of] - local  # characters from here to the end of its text
    seg_bits, pos_bits, bucket_bits = _bits(len(texts) + 1), _bits(MAX_CHARS + 3), _bits(dimension)
    row_bits = _bits(4 * total + 2)
    if seg_bits + 5 * char_bits + pos_bits > 64 or seg_bits + bucket_bits + row_bits > 64:
        return None
    # Distinct character grams per text, with count and first position: one sort of
    # (text, packed gram, position) keys; a group's first element is its first sighting.
    firsts: list[npt.NDArray[np.int64]] = []  # global position of each distinct gram's first sighting
    ns: list[npt.NDArray[np.int64]] = []
    counts: list[npt.NDArray[np.int64]] = []
    for n in (3, 4, 5):
        positions = np.flatnonzero(room >= n)
        if not positions.shape[0]:
            continue
        key = np.zeros(positions.shape[0], dtype=u64)
        for j in range(n):
            key = (key << u64(char_bits)) | data[positions + j].astype(u64)
        packed = np.sort(
            (segment_of[positions].astype(u64) << u64(5 * char_bits + pos_bits))
            | (key << u64(pos_bits))
            | local[positions].astype(u64)
        )
        group = packed >> u64(pos_bits)
        heads = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        first_local = (packed[heads] & u64((1 << pos_bits) - 1)).astype(np.int64)
        first_seg = (packed[heads] >> u64(5 * char_bits + pos_bits)).astype(np.int64)
        firsts.append(starts[first_seg] + first_local)
        ns.append(np.full(heads.shape[0], n, dtype=np.int64))
        counts.append(np.diff(np.append(heads, packed.shape[0])))
    # CRC-32 of each distinct gram's UTF-8 bytes only (one table step per byte).
    row_first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    row_n = np.concatenate(ns) if ns else np.zeros(0, dtype=np.int64)
    crc = np.full(row_first.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for j in range(5):
        live = row_n > j
        char = data[np.minimum(row_first + j, total - 1)]
        if utf8_len is None or utf8_bytes is None:
            stepped = _CRC_TABLE[(crc ^ char.astype(np.uint32)) & 0xFF] ^ (crc >> np.uint32(8))
            crc = np.where(live, stepped, crc)
            continue
        for t in range(int(utf8_len.max())):
            byte = utf8_bytes[char, t]
            stepped = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> np.uint32(8))
            crc = np.where(live & (utf8_len[char] > t), stepped, crc)
    crc ^= np.uint32(0xFFFFFFFF)
    char_bucket = (crc % dimension).astype(np.int64)
    char_seg = segment_of[row_first]
    # Reference order: text by text, 3-grams, 4-grams, 5-grams (each by first sighting), then words.
    char_rank = (row_n - 3) * (1 << pos_bits) + local[row_first]
    # Word uni- and bigrams: few per text, counted as features() counts them.
    word_seg: list[int] = []
    word_grams: list[str] = []
    word_count: list[int] = []
    word_rank: list[int] = []
    for segment_id, text in enumerate(texts):
        words = _WORD.findall(text)
        grams: Counter[str] = Counter(["w:" + w for w in words])
        grams.update([f"b:{a} {b}" for a, b in itertools.pairwise(words)])
        word_seg += [segment_id] * len(grams)
        word_grams += grams
        word_count += grams.values()
        word_rank += range(3 << pos_bits, (3 << pos_bits) + len(grams))
    word_bucket = _word_buckets(word_grams, dimension)
    seg = np.concatenate((char_seg, np.array(word_seg, dtype=np.int64)))
    rank = np.concatenate((char_rank, np.array(word_rank, dtype=np.int64)))
    bucket = np.concatenate((char_bucket, np.array(word_bucket, dtype=np.int64)))
    count = np.concatenate([*counts, np.array(word_count, dtype=np.int64)])
    if not seg.shape[0]:  # no text has a gram (all empty or blank)
        return [(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)) for _ in texts]
    rank_bits = pos_bits + 2
    rows = np.arange(seg.shape[0], dtype=u64)
    order = (
        np.sort((seg.astype(u64) << u64(rank_bits + row_bits)) | (rank.astype(u64) << u64(row_bits)) | rows)
        & u64((1 << row_bits) - 1)
    ).astype(np.int64)
    seg, bucket, count = seg[order], bucket[order], count[order]
    # Sum per (text, bucket) in sequence order, then each text's buckets in first-seen order.
    sequence = np.arange(seg.shape[0], dtype=u64)
    by_pair = np.sort(
        (seg.astype(u64) << u64(bucket_bits + row_bits)) | (bucket.astype(u64) << u64(row_bits)) | sequence
    )
    seq_of = (by_pair & u64((1 << row_bits) - 1)).astype(np.int64)
    pair = by_pair >> u64(row_bits)
    is_head = np.concatenate(([True], pair[1:] != pair[:-1]))
    heads = np.flatnonzero(is_head)
    sums = _SUBLINEAR[count[seq_of[heads]]]  # a bucket with one gram: 0.0 + 1.0 + log(count)
    shared = np.flatnonzero(np.diff(np.append(heads, seq_of.shape[0])) > 1)
    if shared.shape[0]:
        # Buckets several grams hash to (rare): added one by one, as features() does, including
        # its grouping ``(sum + 1.0) + log(count)``, so the rounding is the same.
        ends = np.append(heads, seq_of.shape[0])
        counts_seq = count.tolist()
        for g in shared.tolist():
            total = 0.0
            for row in seq_of[ends[g] : ends[g + 1]].tolist():
                total = total + 1.0 + math.log(counts_seq[row])
            sums[g] = total
    head_seq = seq_of[is_head]
    by_sighting = np.argsort(head_seq)
    head_seq, sums = head_seq[by_sighting], sums[by_sighting]
    indexes = bucket[head_seq]
    bounds = np.searchsorted(seg[head_seq], np.arange(len(texts) + 1)).tolist()
    squares = (sums * sums).tolist()
    out = []
    for k in range(len(texts)):
        lo, hi = bounds[k], bounds[k + 1]
        norm = math.sqrt(sum(squares[lo:hi])) or 1.0  # sequential, as features() adds
        out.append((indexes[lo:hi], sums[lo:hi] / norm))
    return out


_WORD_BUCKETS: dict[int, dict[str, int]] = {}
_WORD_BUCKETS_MAX = 200_000


def _word_buckets(grams: list[str], dimension: int) -> list[int]:
    """``crc32(gram) % dimension`` of word grams, remembered (words repeat far more than they vary)."""
    known = _WORD_BUCKETS.setdefault(dimension, {})
    if len(known) > _WORD_BUCKETS_MAX:
        known.clear()
    found = [known.get(g, -1) for g in grams]
    for i, bucket in enumerate(found):
        if bucket < 0:
            gram = grams[i]
            found[i] = known[gram] = zlib.crc32(gram.encode()) % dimension
    return found


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

    def score_many(self, texts: Sequence[str]) -> list[float]:
        """``[score(t) for t in texts]``, the same numbers, with the features of all texts computed at once."""
        scores = []
        for index, value64 in features_many(texts, self.dimension):
            if not index.shape[0]:
                scores.append(0.0)
                continue
            z = float(self.weights[index] @ value64.astype(np.float32)) + self.bias
            scores.append(1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0))))
        return scores


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
