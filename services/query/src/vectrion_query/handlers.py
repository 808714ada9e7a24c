"""FastStream subscribers of the query service: thin, the work is in :mod:`vectrion_query.indexing`."""

from __future__ import annotations

from vectrion_common.contracts import (
    ChunksEmbeddedV1,
    ChunksEmbeddedV2,
    DocumentDeletionRequestedV1,
    DocumentFailedV1,
    Event,
)
from vectrion_common.runtime import ServiceRuntime
from vectrion_query.deletion import DocumentRemover, FailedDocumentRemover
from vectrion_query.indexing import ChunkIndexer

CONSUMED_EVENTS: tuple[type[Event], ...] = (
    ChunksEmbeddedV2,
    ChunksEmbeddedV1,
    DocumentDeletionRequestedV1,
    DocumentFailedV1,
)


def register_handlers(runtime: ServiceRuntime, indexer: ChunkIndexer) -> None:
    # Every step is idempotent: a retried batch upserts the same points and the inbox
    # drops a copy that already committed (see vectrion_common.messaging.retry).
    runtime.subscribe(ChunksEmbeddedV2, indexer.handle)
    # v1: batches embedded before an upgrade, still in the queue; the indexer takes both.
    runtime.subscribe(ChunksEmbeddedV1, indexer.handle)
    remover = DocumentRemover(indexer.store, indexer.sessions, indexer.wake_relay, indexer.on_tenant_changed)
    runtime.subscribe(DocumentDeletionRequestedV1, remover.handle)
    failed = FailedDocumentRemover(indexer.store, indexer.sessions, indexer.on_tenant_changed)
    runtime.subscribe(DocumentFailedV1, failed.handle)
