"""Liability snapshots: the platform operator's upload of users' balances, checked whole and
built into one Merkle sum tree per asset by a Celery job (docs/liabilities.md)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from audits.models import LiabilitySnapshot, LiabilityTree
from audits.triggers import request_runs

# --- Used by reconciliation: latest_trees and on_snapshot_published (kept together at the
# end so the merge with the ingest/build code keeps one copy of each).


def latest_trees(asset_ids: Iterable[int]) -> dict[int, LiabilityTree]:
    """Each asset's tree from the newest published snapshot (by as-of) that has one, with its
    snapshot; one query whatever the number of assets or snapshots (a window function numbers
    each asset's trees, newest first)."""
    ids = list(set(asset_ids))
    if not ids:
        return {}
    newest_first = Window(
        RowNumber(),
        partition_by=[F("asset_id")],
        order_by=[F("snapshot__as_of").desc(), F("snapshot_id").desc()],
    )
    trees = (
        LiabilityTree.objects.filter(
            asset_id__any_of=ids, snapshot__status=LiabilitySnapshot.Status.PUBLISHED
        )
        .select_related("snapshot")
        .annotate(n=newest_first)
        .filter(n=1)
        .order_by()
    )
    return {tree.asset_id: tree for tree in trees}


def on_snapshot_published(snapshot: LiabilitySnapshot) -> None:
    """Reconcile every asset of a newly published snapshot once its transaction commits: its
    users' balances are new evidence (call it inside the publishing transaction)."""
    request_runs(LiabilityTree.objects.filter(snapshot=snapshot).values_list("asset_id", flat=True))
