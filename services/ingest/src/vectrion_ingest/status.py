"""The document status state machine: plain rules, no I/O.

Only ingest writes a document's status, and only through :func:`decide`.
Pipeline events arrive at least once and in any order: ``document.indexed``
may be handled before ``document.chunked`` of the same generation. So:

- an event of an older generation than the document's is stale and ignored
  (a reprocess has started since); a newer one cannot come from us and is
  ignored too;
- ``deleting``/``deleted`` ignore pipeline events (the deletion saga owns them);
- ``failed`` is terminal for its generation (only a reprocess leaves it);
- the pipeline only moves forward: ``chunked`` after ``indexed`` keeps
  ``indexed`` but its page and chunk counts are still recorded;
- ``failed`` is reachable from every live status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DocumentStatus(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    PROCESSED = "processed"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


class PipelineStep(StrEnum):
    """What a consumed event reports (document.chunked / .indexed / .failed)."""

    CHUNKED = "chunked"
    INDEXED = "indexed"
    FAILED = "failed"


# How far along the pipeline a live status is; a step never lowers it.
_PROGRESS = {
    DocumentStatus.UPLOADED: 0,
    DocumentStatus.PROCESSING: 1,
    DocumentStatus.PROCESSED: 2,
    DocumentStatus.INDEXED: 3,
}
_STEP_TARGET = {
    PipelineStep.CHUNKED: DocumentStatus.PROCESSED,
    PipelineStep.INDEXED: DocumentStatus.INDEXED,
}
_DELETION = frozenset({DocumentStatus.DELETING, DocumentStatus.DELETED})


@dataclass(frozen=True, slots=True)
class Decision:
    """``accept``: record the event's facts (counts, error). ``status``: the status afterwards."""

    accept: bool
    status: DocumentStatus
    reason: str


def decide(
    current: DocumentStatus, generation: int, step: PipelineStep, event_generation: int
) -> Decision:
    """What a ``step`` event of ``event_generation`` does to a document in ``current``."""
    if event_generation < generation:
        return Decision(False, current, "stale-generation")
    if event_generation > generation:
        return Decision(False, current, "unknown-generation")
    if current in _DELETION:
        return Decision(False, current, "being-deleted")
    if current is DocumentStatus.FAILED:
        return Decision(False, current, "failed-is-terminal")
    if step is PipelineStep.FAILED:
        return Decision(True, DocumentStatus.FAILED, "failed")
    target = _STEP_TARGET[step]
    if _PROGRESS[target] > _PROGRESS[current]:
        return Decision(True, target, "advanced")
    # Late or repeated step: keep the further status, still take its counts.
    return Decision(True, current, "counts-only")
