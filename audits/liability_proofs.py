"""Inclusion proofs read from published liability trees (docs/proof-format.md, "Bundle").

Each proof is a handful of positioned reads of a locally cached tree file (a binary search on
the sorted leaves, then one record per level): nothing per request grows with the tree.
Only published snapshots are served; anything else is "not found", like an unknown account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.urls import reverse

from audits import liability_files
from audits.core.bundle import BUNDLE_FORMAT
from audits.core.liabilities import MAX_ACCOUNT_ID_BYTES, nonce_for
from audits.core.merkle import MerkleError, TreeReader
from audits.models import Attestation, LiabilitySnapshot, LiabilityTree

# How many of the newest attestations issued since a snapshot was published are searched for
# the one naming its trees: one is issued at least daily, and a bundle asked for long after
# its snapshot was superseded simply carries no attestation reference.
ATTESTATION_SEARCH = 200


class NotFound(Exception):
    """No published snapshot of that id, or the account is in none of its trees."""


def _time(value) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Tree:
    code: str
    file_name: str
    file_sha256: str


@dataclass(frozen=True)
class _Published:
    summary: dict[str, Any]
    trees: tuple[_Tree, ...]


# A published snapshot and its trees never change (published is final, trees are protected
# from deletion, files are content-addressed), so each process remembers them: a proof then
# costs no query at all, only the reads of the tree file. Snapshots not yet published are
# never remembered.
_PUBLISHED: dict[int, _Published] = {}
_REMEMBER = 64


def forget() -> None:
    """Drop what this process remembers (tests whose database ids start over)."""
    _PUBLISHED.clear()
    while _READERS:
        _READERS.popitem()[1].close()


def _published(snapshot_id: int) -> _Published:
    known = _PUBLISHED.get(snapshot_id)
    if known is not None:
        return known
    rows = list(
        LiabilityTree.objects.filter(
            snapshot_id=snapshot_id, snapshot__status=LiabilitySnapshot.Status.PUBLISHED
        )
        .select_related("asset", "snapshot")
        .order_by("asset__code")
    )
    if not rows:  # a published snapshot always has a tree: the builder refuses empty ones
        raise NotFound
    snapshot = rows[0].snapshot
    known = _Published(
        {"id": snapshot.pk, "as_of": _time(snapshot.as_of)},
        tuple(_Tree(t.asset.code, t.file_name, t.file_sha256) for t in rows),
    )
    if len(_PUBLISHED) >= _REMEMBER:
        _PUBLISHED.pop(next(iter(_PUBLISHED)))
    _PUBLISHED[snapshot_id] = known
    return known


# Open tree files by SHA-256, memory-mapped: a proof is then a few slices, no system call.
_READERS: dict[str, TreeReader] = {}


def _reader(tree: _Tree) -> TreeReader:
    reader = _READERS.get(tree.file_sha256)
    if reader is None:
        path = liability_files.local_tree(tree.file_name, tree.file_sha256)
        reader = TreeReader(path)
        if len(_READERS) >= _REMEMBER:
            _READERS.pop(next(iter(_READERS))).close()
        _READERS[tree.file_sha256] = reader
    return reader


def _extract(tree: _Tree, **where: Any) -> dict[str, Any] | None:
    try:
        return _reader(tree).proof(**where)
    except MerkleError as exc:
        if exc.field == "account_hash":  # not in this asset's tree
            return None
        raise


def proofs_by_hash(snapshot_id: int, account_hash_hex: str) -> list[dict[str, Any]]:
    """One ``por-mst-v1`` proof (without the account block) per asset tree of the published
    snapshot holding ``account_hash_hex`` (64 hex digits), by asset code; [] if none."""
    try:
        published = _published(snapshot_id)
    except NotFound:
        return []
    wanted = bytes.fromhex(account_hash_hex)
    proofs = []
    for tree in published.trees:
        proof = _extract(tree, account_hash_=wanted)
        if proof is not None:
            proofs.append(proof)
    return proofs


def proofs_document(snapshot_id: int, account_hash_hex: str) -> bytes | None:
    """The public proofs answer, as the exact JSON bytes served (by the API view and by the
    WSGI fast path alike), or None when no tree of the published snapshot holds the hash.
    ``account_hash_hex`` must already be 64 lower-case hex digits."""
    proofs = proofs_by_hash(snapshot_id, account_hash_hex)
    if not proofs:
        return None
    data = {
        "snapshot": snapshot_summary(snapshot_id),
        "account_hash": account_hash_hex,
        "proofs": proofs,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def snapshot_summary(snapshot_id: int) -> dict[str, Any]:
    """{id, as_of} of a published snapshot; NotFound otherwise."""
    return dict(_published(snapshot_id).summary)


def bundle(snapshot_id: int, account_id: str) -> dict[str, Any]:
    """The user's ``por-bundle-v1``: every asset's proof with the account block (id and the
    nonce derived from the snapshot's secret) and the newest attestation naming the roots of
    those trees. NotFound if the snapshot is not published or the account is in no tree."""
    published = _published(snapshot_id)
    try:
        encoded = account_id.encode("utf-8")
    except UnicodeEncodeError:
        raise NotFound from None
    if not encoded or len(encoded) > MAX_ACCOUNT_ID_BYTES:  # no snapshot file can hold it
        raise NotFound
    # The secret is read for this request only: it is never remembered.
    snapshot = LiabilitySnapshot.objects.only("secret", "published_at").get(pk=snapshot_id)
    nonce = nonce_for(bytes(snapshot.secret), account_id)
    proofs = []
    for tree in published.trees:
        proof = _extract(tree, account_id=account_id, nonce=nonce)
        if proof is not None:
            proofs.append(proof)
    if not proofs:
        raise NotFound
    return {
        "format": BUNDLE_FORMAT,
        "snapshot": dict(published.summary),
        "account": {"id": account_id, "nonce": nonce.hex()},
        "proofs": proofs,
        "attestation": attestation_reference(snapshot, proofs),
    }


def _names_roots(payload: bytes, snapshot_id: int, roots: set[tuple[str, str]]) -> bool:
    try:
        assets = json.loads(payload)["predicate"]["assets"]
    except (ValueError, KeyError, TypeError):
        return False
    attested = set()
    for asset in assets if isinstance(assets, list) else []:
        liabilities = asset.get("liabilities") if isinstance(asset, dict) else None
        if isinstance(liabilities, dict) and str(liabilities.get("snapshot")) == str(snapshot_id):
            attested.add((asset.get("code"), liabilities.get("root_hash")))
    return roots <= attested


def attestation_reference(
    snapshot: LiabilitySnapshot, proofs: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """{sequence, payload_digest, url} of the newest attestation that names every root of
    ``proofs`` as this snapshot's liabilities, or None (not attested yet, or superseded)."""
    roots = {(a["code"], p["root"]["hash"]) for p in proofs for a in p["assets"]}
    candidates = Attestation.objects.order_by("-sequence").only(
        "sequence", "payload", "payload_sha256"
    )
    if snapshot.published_at is not None:
        # Attestations are issued at whole seconds.
        since = snapshot.published_at.replace(microsecond=0)
        candidates = candidates.filter(issued_at__gte=since)
    for attestation in candidates[:ATTESTATION_SEARCH]:
        if _names_roots(bytes(attestation.payload), snapshot.pk, roots):
            return {
                "sequence": attestation.sequence,
                "payload_digest": f"sha256:{attestation.payload_sha256}",
                "url": reverse(
                    "public:attestation-envelope", kwargs={"sequence": attestation.sequence}
                ),
            }
    return None
