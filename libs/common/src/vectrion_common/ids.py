"""Deterministic ids: the same chunk of the same generation always gets the same id,
so redelivered or replayed messages upsert instead of duplicating."""

from __future__ import annotations

import uuid

CHUNK_NAMESPACE = uuid.UUID("6f1c1d2e-7d0a-4c55-9a43-2f4a3c9b8e11")


def chunk_id(document_id: uuid.UUID, generation: int, chunk_index: int) -> uuid.UUID:
    return uuid.uuid5(CHUNK_NAMESPACE, f"{document_id}:{generation}:{chunk_index}")


def derived_event_id(source_event_id: uuid.UUID, purpose: str) -> uuid.UUID:
    """The id of an event caused by ``source_event_id``: equal across redeliveries."""
    return uuid.uuid5(source_event_id, purpose)
