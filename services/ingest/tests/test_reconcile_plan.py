"""The reconciler's judgement (plain code): which differences it finds and what it does about them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from vectrion_common.contracts import DocumentHoldings
from vectrion_ingest.reconcile import plan_repairs

TENANT = uuid.uuid4()
NOW = datetime.now(UTC)
GRACE_EDGE = NOW - timedelta(hours=1)


def _doc(status: str, *, chunks: int | None = 3, generation: int = 1) -> SimpleNamespace:
    document_id = uuid.uuid4()
    return SimpleNamespace(
        id=document_id,
        tenant_id=TENANT,
        status=status,
        generation=generation,
        chunks=chunks,
        storage_key=f"{TENANT}/{document_id}/original",
    )


def _held(document_id: uuid.UUID, rows: dict[int, int], points: dict[int, int] | None = None) -> DocumentHoldings:
    return DocumentHoldings(document_id=document_id, tenant_id=TENANT, rows=rows, points=points or {})


def test_a_consistent_indexed_document_gives_no_finding() -> None:
    doc = _doc("indexed", generation=2)
    plan = plan_repairs(
        [doc],
        {doc.id: _held(doc.id, {2: 3})},
        {doc.id: _held(doc.id, {2: 3}, {2: 3})},
        {doc.storage_key: NOW},
        orphan_before=GRACE_EDGE,
    )
    assert plan.findings == [] and plan.reprocess == [] and plan.redelete == {} and plan.orphan_files == []


def test_missing_points_or_rows_of_the_current_generation_mean_reprocess() -> None:
    fewer_points, fewer_rows = _doc("indexed"), _doc("indexed")
    plan = plan_repairs(
        [fewer_points, fewer_rows],
        {fewer_points.id: _held(fewer_points.id, {1: 3}), fewer_rows.id: _held(fewer_rows.id, {1: 3})},
        {
            fewer_points.id: _held(fewer_points.id, {1: 3}, {1: 2}),
            fewer_rows.id: _held(fewer_rows.id, {1: 2}, {1: 3}),
        },
        {fewer_points.storage_key: NOW, fewer_rows.storage_key: NOW},
        orphan_before=GRACE_EDGE,
    )
    assert sorted(plan.reprocess) == sorted([fewer_points.id, fewer_rows.id])
    assert {f.kind for f in plan.findings} == {"index_mismatch"}


def test_data_of_deleted_or_unknown_documents_is_deleted_again_but_a_failed_one_only_reported() -> None:
    deleted, failed = _doc("deleted"), _doc("failed")
    unknown = uuid.uuid4()
    plan = plan_repairs(
        [deleted, failed],
        {deleted.id: _held(deleted.id, {1: 3}), unknown: _held(unknown, {1: 1})},
        {failed.id: _held(failed.id, {1: 1}, {1: 1})},
        {},
        orphan_before=GRACE_EDGE,
    )
    assert plan.redelete == {deleted.id: TENANT, unknown: TENANT}
    kinds = {f.kind: f.action for f in plan.findings}
    assert kinds == {
        "deleted_but_held": "request deletion",
        "unknown_document": "request deletion",
        "failed_but_searchable": "none",
    }


def test_a_tombstoned_stage_with_nothing_left_is_not_a_finding() -> None:
    deleted = _doc("deleted")
    tombstone = DocumentHoldings(document_id=deleted.id, tenant_id=TENANT, tombstoned=True)
    plan = plan_repairs([deleted], {deleted.id: tombstone}, {deleted.id: tombstone}, {}, orphan_before=GRACE_EDGE)
    assert plan.findings == []


def test_only_old_files_no_live_document_owns_are_orphans_and_missing_files_are_reported() -> None:
    live, gone = _doc("indexed", chunks=0), _doc("deleted")
    files = {
        gone.storage_key: NOW - timedelta(days=2),
        "t/stray/original": NOW - timedelta(days=2),
        "t/just-uploaded/original": NOW,  # its row may not be committed yet
    }
    plan = plan_repairs([live, gone], {}, {}, files, orphan_before=GRACE_EDGE)
    assert sorted(plan.orphan_files) == sorted([gone.storage_key, "t/stray/original"])
    assert ("missing_file", live.id) in {(f.kind, f.document_id) for f in plan.findings}
