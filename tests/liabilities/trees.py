"""Published liability snapshots for tests, made the way the service will make them (nonces
HMAC-derived from the snapshot's secret, one k = 1 tree per asset, stored by save_tree), but
without the ingest: the rows are created directly. And signed attestations naming their roots,
served through real Attestation rows."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model

from audits import liability_files
from audits.core import attestation as core
from audits.core.liabilities import nonce_for
from audits.core.merkle import Asset as TreeAsset
from audits.core.merkle import account_hash, build_tree
from audits.models import (
    Asset,
    Attestation,
    AttestationKey,
    LiabilitySnapshot,
    LiabilityTree,
)
from audits.statements import plain_decimal
from tests.attestation.helpers import seeded_key

AS_OF = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
PUBLISHED = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
KEY = seeded_key(12)
KID = core.key_id(KEY.public_key())
# Real ISINs with valid check digits, one per test asset.
ISINS = {"AAPLx": "US0378331005", "MSFTx": "US5949181045", "TSLAx": "US88160R1014"}


def asset(code: str, decimals: int = 6) -> Asset:
    found, _ = Asset.objects.get_or_create(
        code=code, defaults={"name": code, "isin": ISINS[code], "decimals": decimals}
    )
    return found


def operator_user():
    user = get_user_model().objects.create_user("uploader", password="x")
    return user


def publish(
    balances: dict[str, dict[str, int]],
    *,
    user=None,
    as_of: datetime = AS_OF,
    published_at: datetime = PUBLISHED,
    decimals: int = 6,
) -> LiabilitySnapshot:
    """A published snapshot: ``balances`` maps asset code → {account id: smallest units}."""
    if user is None:
        user = get_user_model().objects.filter(username="uploader").first() or operator_user()
    secret = os.urandom(32)
    snapshot = LiabilitySnapshot.objects.create(
        as_of=as_of,
        uploaded_by=user,
        raw_name="raw/test.csv",
        raw_sha256="0" * 64,
        raw_size=0,
        status=LiabilitySnapshot.Status.PUBLISHED,
        secret=secret,
        progress=100,
        published_at=published_at,
    )
    for code, accounts in balances.items():
        row = asset(code, decimals)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "tree.mst"
            info = build_tree(
                ((aid, nonce_for(secret, aid), [amount]) for aid, amount in accounts.items()),
                1,
                os.urandom(32),
                path,
                snapshot=str(snapshot.pk),
                assets=[TreeAsset(code, row.decimals)],
                workers=1,
            )
            stored = liability_files.save_tree(path)
        LiabilityTree.objects.create(
            snapshot=snapshot,
            asset=row,
            root_hash=info.root_hash.hex(),
            root_sum=info.root_sums[0],
            account_count=info.real_count,
            leaf_count=info.leaf_count,
            file_name=stored.name,
            file_sha256=stored.sha256,
            file_size=stored.size,
        )
    return snapshot


def hash_of(snapshot: LiabilitySnapshot, account_id: str) -> str:
    return account_hash(account_id, nonce_for(bytes(snapshot.secret), account_id)).hex()


def liabilities_of(tree: LiabilityTree) -> dict:
    """The predicate's per-asset `liabilities` entry for a tree (docs/attestation-format.md)."""
    return {
        "snapshot": tree.snapshot_id,
        "as_of": tree.snapshot.as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "root_hash": tree.root_hash,
        "root_sum": plain_decimal(Decimal(int(tree.root_sum)).scaleb(-tree.asset.decimals)),
        "root_sum_units": str(int(tree.root_sum)),
        "leaf_count": tree.leaf_count,
        "tree_sha256": tree.file_sha256,
    }


def attest(
    snapshot: LiabilitySnapshot | None,
    *,
    issued_at: datetime = PUBLISHED + timedelta(hours=1),
    change=None,
) -> Attestation:
    """Sign and store the next attestation: one entry per asset with the snapshot's tree (the
    entry's `liabilities`), `change(predicate)` applied before signing."""
    key_row, _ = AttestationKey.objects.get_or_create(
        kid=KID,
        defaults={
            "public_key": KEY.public_key().public_bytes_raw(),
            "not_before": datetime(2026, 1, 1, tzinfo=UTC),
        },
    )
    previous = Attestation.objects.order_by("-sequence").first()
    trees = list(snapshot.trees.select_related("asset", "snapshot")) if snapshot else []
    predicate = {
        "sequence": previous.sequence + 1 if previous else 1,
        "previous": core.payload_digest(json.loads(previous.envelope)) if previous else None,
        "issued_at": issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "evidence_as_of": "2026-11-27T21:00:00Z",
        "assets": [
            {"code": t.asset.code, "status": "healthy", "liabilities": liabilities_of(t)}
            for t in trees
        ],
    }
    if change is not None:
        change(predicate)
    subjects = sorted((f"liabilities-{t.asset.code}.mst", t.file_sha256) for t in trees)
    envelope = core.sign(core.build_statement(subjects, predicate), KEY, KID)
    payload = base64.b64decode(envelope["payload"])
    return Attestation.objects.create(
        sequence=predicate["sequence"],
        issued_at=issued_at,
        previous=previous,
        payload=payload,
        envelope=json.dumps(envelope, sort_keys=True, separators=(",", ":")),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        key=key_row,
        reason="changed",
        subjects=[list(s) for s in subjects],
    )
