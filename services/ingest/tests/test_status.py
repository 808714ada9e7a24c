"""The status state machine, as plain code."""

from __future__ import annotations

import pytest

from vectrion_ingest.status import Decision, DocumentStatus, PipelineStep, decide

S = DocumentStatus
P = PipelineStep


@pytest.mark.parametrize(
    ("current", "step", "expected"),
    [
        (S.UPLOADED, P.CHUNKED, S.PROCESSED),
        (S.PROCESSING, P.CHUNKED, S.PROCESSED),
        (S.UPLOADED, P.INDEXED, S.INDEXED),
        (S.PROCESSED, P.INDEXED, S.INDEXED),
        (S.UPLOADED, P.FAILED, S.FAILED),
        (S.PROCESSED, P.FAILED, S.FAILED),
        (S.INDEXED, P.FAILED, S.FAILED),
    ],
)
def test_pipeline_steps_of_the_current_generation_move_the_document_forward(
    current: DocumentStatus, step: PipelineStep, expected: DocumentStatus
) -> None:
    decision = decide(current, 3, step, 3)
    assert decision.accept
    assert decision.status is expected


def test_chunked_after_indexed_keeps_indexed_but_records_its_counts() -> None:
    assert decide(S.INDEXED, 1, P.CHUNKED, 1) == Decision(True, S.INDEXED, "counts-only")


def test_repeated_step_keeps_status_and_accepts_counts() -> None:
    assert decide(S.PROCESSED, 1, P.CHUNKED, 1) == Decision(True, S.PROCESSED, "counts-only")
    assert decide(S.INDEXED, 1, P.INDEXED, 1) == Decision(True, S.INDEXED, "counts-only")


@pytest.mark.parametrize("step", list(PipelineStep))
@pytest.mark.parametrize("current", [S.UPLOADED, S.PROCESSED, S.INDEXED, S.FAILED])
def test_events_of_an_older_generation_are_ignored(current: DocumentStatus, step: PipelineStep) -> None:
    assert decide(current, 2, step, 1) == Decision(False, current, "stale-generation")


def test_events_of_a_generation_ingest_never_started_are_ignored() -> None:
    assert decide(S.UPLOADED, 1, P.INDEXED, 2) == Decision(False, S.UPLOADED, "unknown-generation")


@pytest.mark.parametrize("step", list(PipelineStep))
def test_failed_is_terminal_for_its_generation(step: PipelineStep) -> None:
    assert decide(S.FAILED, 1, step, 1) == Decision(False, S.FAILED, "failed-is-terminal")


@pytest.mark.parametrize("step", list(PipelineStep))
@pytest.mark.parametrize("current", [S.DELETING, S.DELETED])
def test_documents_being_deleted_ignore_pipeline_events(current: DocumentStatus, step: PipelineStep) -> None:
    assert decide(current, 1, step, 1) == Decision(False, current, "being-deleted")


@pytest.mark.parametrize("current", list(DocumentStatus))
@pytest.mark.parametrize("step", list(PipelineStep))
@pytest.mark.parametrize("event_generation", [1, 2, 3])
def test_no_event_ever_regresses_a_live_status(
    current: DocumentStatus, step: PipelineStep, event_generation: int
) -> None:
    order = [S.UPLOADED, S.PROCESSING, S.PROCESSED, S.INDEXED]
    after = decide(current, 2, step, event_generation).status
    if current in order and after in order:
        assert order.index(after) >= order.index(current)
    if not decide(current, 2, step, event_generation).accept:
        assert after is current
