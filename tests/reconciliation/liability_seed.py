"""Published liability snapshots made directly (the ingest and build service is tested in
tests/liabilities/): a snapshot row and one tree row per asset, as `build` leaves them."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model

from audits.models import Asset, LiabilitySnapshot, LiabilityTree


def publish(
    units: dict[Asset, int],
    as_of: datetime,
    *,
    status: str = LiabilitySnapshot.Status.PUBLISHED,
    user=None,
) -> tuple[LiabilitySnapshot, dict[int, LiabilityTree]]:
    """A snapshot as of ``as_of`` whose tree of each asset sums to ``units`` (smallest units)."""
    user = user or get_user_model().objects.get_or_create(username="platform")[0]
    tag = f"{as_of.isoformat()} {sorted((a.pk, n) for a, n in units.items())} {status}"
    snapshot = LiabilitySnapshot.objects.create(
        as_of=as_of,
        uploaded_by=user,
        raw_name=f"liabilities/{hashlib.sha256(tag.encode()).hexdigest()}",
        raw_sha256=hashlib.sha256(tag.encode()).hexdigest(),
        raw_size=100,
        status=status,
        secret=b"x" * 32,
        row_count=3,
        progress=100,
        published_at=as_of if status == LiabilitySnapshot.Status.PUBLISHED else None,
    )
    trees = {}
    for asset, total in units.items():
        seed = f"{snapshot.pk} {asset.code}".encode()
        trees[asset.pk] = LiabilityTree.objects.create(
            snapshot=snapshot,
            asset=asset,
            root_hash=hashlib.sha256(b"root " + seed).hexdigest(),
            root_sum=Decimal(total),
            account_count=3,
            leaf_count=4,
            file_name=f"trees/{hashlib.sha256(b'file ' + seed).hexdigest()}",
            file_sha256=hashlib.sha256(b"file " + seed).hexdigest(),
            file_size=1024,
        )
    return snapshot, trees
