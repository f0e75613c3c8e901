"""Liability snapshots: the platform operator's upload of users' balances, checked whole and
built into one Merkle sum tree per asset by a Celery job (docs/liabilities.md).

Nothing sent is lost: ``receive`` stores the raw file before the snapshot row exists. Nothing
is half-published: a build writes tree files to storage as it goes (content-addressed, so an
interrupted build leaves only unreferenced files), and every ``LiabilityTree`` row is created
in the one transaction that makes the snapshot ``published``. Nothing is built twice: a build
starts only by claiming the snapshot with a conditional UPDATE that counts the attempt, and
every later write names that attempt, so a worker whose claim ran out (presumed dead, the
snapshot re-queued and claimed again) can no longer change anything.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from celery import current_app
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from audits import liability_files
from audits.core import liabilities as core
from audits.core.merkle import Asset as TreeAsset
from audits.core.merkle import MerkleError, build_tree_from_records
from audits.models import Asset, LiabilitySnapshot, LiabilityTree
from audits.permissions import is_platform_operator
from audits.triggers import request_runs

logger = logging.getLogger(__name__)

Status = LiabilitySnapshot.Status

BUILD_TASK = "audits.tasks.build_liability_snapshot"
# Builds per snapshot; a snapshot whose build was interrupted this often is `failed`.
MAX_ATTEMPTS = 3
# A claim lasts this long and is renewed by every progress write; one that runs out was a
# dead worker's. Longer than the longest stretch without progress (one asset's tree build).
CLAIM_LEASE = timedelta(minutes=10)
# A snapshot still `received` this long after it was queued has lost its task: queued again.
QUEUE_GRACE = timedelta(minutes=5)
# Progress is written at most this often, or on this many percent more, or on a new phase.
_PROGRESS_SECONDS = 1.0
_PROGRESS_STEP = 5
_RECORD_CHUNK = 1 << 20
# One open sink per active asset while checking: small buffers, since there may be hundreds.
_SINK_BUFFER = 1 << 16


def is_operator(user) -> bool:
    """True for an active platform operator (never also a custodian user)."""
    return is_platform_operator(user)


def new_secret() -> bytes:
    return secrets.token_bytes(core.SECRET_BYTES)


def receive(*, user, chunks: Iterable[bytes], as_of: datetime) -> tuple[LiabilitySnapshot, bool]:
    """Store an upload (raw file first), then the snapshot, and queue its build on commit.

    The same bytes with the same as-of as an existing snapshot return that snapshot and
    ``False`` (queued again if still ``received``). Raises ``liability_files.TooLarge`` past
    LIABILITY_MAX_UPLOAD (nothing stored), ValueError for an as-of without a UTC offset.
    """
    if timezone.is_naive(as_of):
        raise ValueError("as_of needs a UTC offset")
    stored = liability_files.save_raw(chunks)
    now = timezone.now()
    with transaction.atomic():
        # One upload per user at a time decides "repeat or new".
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
        existing = (
            LiabilitySnapshot.objects.filter(raw_sha256=stored.sha256, as_of=as_of)
            .order_by("pk")
            .first()
        )
        if existing is not None:
            if existing.status == Status.RECEIVED:
                _queue(existing.pk)
            return existing, False
        snapshot = LiabilitySnapshot.objects.create(
            as_of=as_of,
            uploaded_by=user,
            raw_name=stored.name,
            raw_sha256=stored.sha256,
            raw_size=stored.size,
            status=Status.RECEIVED,
            phase="queued",
            secret=new_secret(),
            claimed_until=now + QUEUE_GRACE,
        )
        _queue(snapshot.pk)
    logger.info(
        "liability snapshot received", extra={"snapshot": snapshot.pk, "bytes": stored.size}
    )
    return snapshot, True


def _queue(snapshot_id: int) -> None:
    # By name: services sit below the tasks module.
    transaction.on_commit(lambda: current_app.send_task(BUILD_TASK, args=[snapshot_id]))


class _Claim:
    """One attempt's hold on a snapshot: every write is conditional on still holding it."""

    def __init__(self, snapshot_id: int, attempt: int) -> None:
        self.snapshot_id = snapshot_id
        self.attempt = attempt
        self._phase = ""
        self._percent = -1
        self._written = 0.0

    def rows(self):
        return LiabilitySnapshot.objects.filter(
            pk=self.snapshot_id, status=Status.CHECKING, attempts=self.attempt
        )

    def progress(self, phase: str, percent: int, *, force: bool = False) -> None:
        """Record progress (and renew the claim) with a plain UPDATE, at most about once a
        second or every few percent: never a transaction held open over the build."""
        percent = max(0, min(100, int(percent)))
        clock = time.monotonic()
        due = (
            force
            or phase != self._phase
            or percent - self._percent >= _PROGRESS_STEP
            or clock - self._written >= _PROGRESS_SECONDS
        )
        if not due or ((phase, percent) == (self._phase, self._percent) and not force):
            return
        self.rows().update(
            phase=phase, progress=percent, claimed_until=timezone.now() + CLAIM_LEASE
        )
        self._phase, self._percent, self._written = phase, percent, clock


def _claim(snapshot_id: int) -> _Claim | None:
    now = timezone.now()
    claimable = Q(status=Status.RECEIVED) | Q(status=Status.CHECKING, claimed_until__lt=now)
    claimed = LiabilitySnapshot.objects.filter(
        claimable, pk=snapshot_id, attempts__lt=MAX_ATTEMPTS
    ).update(
        status=Status.CHECKING,
        attempts=F("attempts") + 1,
        claimed_until=now + CLAIM_LEASE,
        phase="checking",
        progress=0,
    )
    if not claimed:
        return None
    attempt = LiabilitySnapshot.objects.values_list("attempts", flat=True).get(pk=snapshot_id)
    return _Claim(snapshot_id, attempt)


def build(snapshot_id: int) -> LiabilitySnapshot:
    """Check the snapshot and build its trees, or reject it; publish all trees at once.

    A snapshot that cannot be claimed (already final, being built by a live worker, or out of
    attempts) is returned unchanged. Any unexpected error makes it ``failed``.
    """
    claim = _claim(snapshot_id)
    if claim is None:
        return LiabilitySnapshot.objects.get(pk=snapshot_id)
    snapshot = LiabilitySnapshot.objects.get(pk=snapshot_id)
    logger.info(
        "liability snapshot build started",
        extra={"snapshot": snapshot_id, "attempt": claim.attempt},
    )
    _remove_spools(snapshot_id)  # left by an earlier attempt killed on this machine
    try:
        with tempfile.TemporaryDirectory(
            prefix=f"snapshot-{snapshot_id}-{claim.attempt}-", dir=liability_files.spool_dir()
        ) as scratch:
            _check_and_build(snapshot, claim, Path(scratch))
    except Exception as exc:  # whatever went wrong is recorded, never left `checking`
        # The traceback says where; it is logged, never stored or shown.
        logger.exception("liability snapshot build failed", extra={"snapshot": snapshot_id})
        claim.rows().update(
            status=Status.FAILED, failure=_failure_text(exc), claimed_until=None, phase="failed"
        )
    snapshot.refresh_from_db()
    return snapshot


def _failure_text(exc: Exception) -> str:
    # Only the exception's kind: its message may name local paths, and nothing that touched
    # the secret may reach the database. A tree-builder refusal is about the data: say which.
    if isinstance(exc, MerkleError):
        return f"the tree builder refused the accounts: {exc.field}: {exc.detail}"
    return f"the build stopped on an internal error ({type(exc).__name__}); see the worker log"


def _remove_spools(snapshot_id: int) -> None:
    for leftover in liability_files.spool_dir().glob(f"snapshot-{snapshot_id}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _check_and_build(snapshot: LiabilitySnapshot, claim: _Claim, scratch: Path) -> None:
    assets = {a.code: a for a in Asset.objects.filter(active=True).order_by("code")}
    decimals = {code: asset.decimals for code, asset in assets.items()}
    secret = bytes(snapshot.secret)
    total = max(1, snapshot.raw_size)

    def read(done: int) -> None:
        claim.progress("checking", done * 100 // total)

    with ExitStack() as stack:
        sinks = {
            code: stack.enter_context((scratch / f"{i}.rec").open("wb", buffering=_SINK_BUFFER))
            for i, code in enumerate(decimals)
        }
        with liability_files.open_raw(snapshot.raw_name) as handle:
            split = _split(handle, decimals, secret, sinks, read)
    if not split.ok:
        claim.rows().update(
            status=Status.REJECTED,
            errors=[e.as_dict() for e in split.errors],
            error_count=split.error_count,
            row_count=split.rows,
            phase="rejected",
            progress=100,
            claimed_until=None,
        )
        logger.info(
            "liability snapshot rejected",
            extra={"snapshot": snapshot.pk, "errors": split.error_count},
        )
        return
    named = [code for code in decimals if split.accounts[code]]
    accounts_total = max(1, sum(split.accounts[c] for c in named))
    label = snapshot_label(snapshot)
    pad_secret = _pad_secret(secret)
    built: list[LiabilityTree] = []
    done = 0
    for code in named:
        claim.progress(f"building {code}", done * 100 // accounts_total, force=True)
        index = list(decimals).index(code)
        records, tree_path = scratch / f"{index}.rec", scratch / f"{index}.mst"
        with records.open("rb") as source:
            info = build_tree_from_records(
                _read_chunks(source),
                1,
                pad_secret,
                tree_path,
                snapshot=label,
                assets=[TreeAsset(code, decimals[code])],
            )
        records.unlink()
        stored = liability_files.save_tree(tree_path)
        tree_path.unlink()
        built.append(
            LiabilityTree(
                snapshot_id=snapshot.pk,
                asset=assets[code],
                root_hash=info.root_hash.hex(),
                root_sum=Decimal(info.root_sums[0]),
                account_count=info.real_count,
                leaf_count=info.leaf_count,
                file_name=stored.name,
                file_sha256=stored.sha256,
                file_size=stored.size,
            )
        )
        done += split.accounts[code]
    _publish(snapshot, claim, built, split.rows)


def _split(
    handle: BinaryIO,
    decimals: dict[str, int],
    secret: bytes,
    sinks: dict[str, BinaryIO],
    read: Callable[[int], None],
) -> core.Split:
    """The one call into the splitter: the file in 1 MiB chunks (never a line or a row as a
    Python object with the compiled splitter), ``read(bytes so far)`` after each."""
    return core.split_chunks(_read_chunks(handle), decimals, secret, sinks, progress=read)


def _read_chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(_RECORD_CHUNK):
        yield chunk


def _pad_secret(secret: bytes) -> bytes:
    # Distinct from every account's nonce: account ids never hold a control character.
    return hmac.new(secret, b"\x00por-mst-v1/pad", hashlib.sha256).digest()


def snapshot_label(snapshot: LiabilitySnapshot) -> str:
    """The ``snapshot`` string written into each tree file (and so into every proof)."""
    as_of = snapshot.as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{as_of}#{snapshot.pk}"


def _publish(
    snapshot: LiabilitySnapshot, claim: _Claim, trees: list[LiabilityTree], rows: int
) -> None:
    now = timezone.now()
    with transaction.atomic():
        published = claim.rows().update(
            status=Status.PUBLISHED,
            published_at=now,
            phase="published",
            progress=100,
            row_count=rows,
            claimed_until=None,
        )
        if not published:
            # The claim ran out and the snapshot moved on without this attempt.
            logger.warning("liability snapshot claim lost", extra={"snapshot": snapshot.pk})
            return
        LiabilityTree.objects.bulk_create(trees)
        on_snapshot_published(snapshot)
    logger.info(
        "liability snapshot published", extra={"snapshot": snapshot.pk, "trees": len(trees)}
    )


def sweep(now: datetime | None = None) -> dict[str, list[int]]:
    """Snapshots whose build was interrupted: queued again while attempts remain, else
    ``failed``; snapshots whose queued task was lost: queued again. Returns the ids."""
    now = now or timezone.now()
    out: dict[str, list[int]] = {"requeued": [], "failed": []}
    stuck = LiabilitySnapshot.objects.filter(status=Status.CHECKING, claimed_until__lt=now)
    for pk, attempts in stuck.values_list("pk", "attempts"):
        rows = LiabilitySnapshot.objects.filter(
            pk=pk, status=Status.CHECKING, attempts=attempts, claimed_until__lt=now
        )
        if attempts >= MAX_ATTEMPTS:
            if rows.update(
                status=Status.FAILED,
                phase="failed",
                claimed_until=None,
                failure=f"the build was interrupted {attempts} times",
            ):
                out["failed"].append(pk)
        elif rows.update(status=Status.RECEIVED, phase="queued", claimed_until=now + QUEUE_GRACE):
            out["requeued"].append(pk)
    lost = LiabilitySnapshot.objects.filter(status=Status.RECEIVED, claimed_until__lt=now)
    for pk in lost.values_list("pk", flat=True):
        if LiabilitySnapshot.objects.filter(
            pk=pk, status=Status.RECEIVED, claimed_until__lt=now
        ).update(claimed_until=now + QUEUE_GRACE):
            out["requeued"].append(pk)
    for pk in out["requeued"]:
        current_app.send_task(BUILD_TASK, args=[pk])
    if out["requeued"] or out["failed"]:
        logger.warning("liability snapshots swept", extra=out)
    return out


def retry_failed(snapshot_id: int) -> bool:
    """Give a ``failed`` snapshot fresh attempts (an admin's decision, once the cause is fixed)
    and queue its build; False if it was not failed."""
    with transaction.atomic():
        retried = LiabilitySnapshot.objects.filter(pk=snapshot_id, status=Status.FAILED).update(
            status=Status.RECEIVED,
            attempts=0,
            failure="",
            phase="queued",
            progress=0,
            claimed_until=timezone.now() + QUEUE_GRACE,
        )
        if retried:
            _queue(snapshot_id)
    return retried == 1


def latest_trees(asset_ids: Iterable[int]) -> dict[int, LiabilityTree]:
    """Each asset's tree from the newest published snapshot (by as-of, then id) that has one,
    with its snapshot; one query whatever the number of assets or snapshots (a window
    function numbers each asset's trees, newest first)."""
    ids = list(set(asset_ids))
    if not ids:
        return {}
    newest_first = Window(
        RowNumber(),
        partition_by=[F("asset_id")],
        order_by=[F("snapshot__as_of").desc(), F("snapshot_id").desc()],
    )
    trees = (
        LiabilityTree.objects.filter(asset_id__any_of=ids, snapshot__status=Status.PUBLISHED)
        .select_related("snapshot", "asset")
        .annotate(n=newest_first)
        .filter(n=1)
        .order_by()
    )
    return {tree.asset_id: tree for tree in trees}


def on_snapshot_published(snapshot: LiabilitySnapshot) -> None:
    """Reconcile every asset of a newly published snapshot once its transaction commits: its
    users' balances are new evidence (called inside the publishing transaction)."""
    request_runs(LiabilityTree.objects.filter(snapshot=snapshot).values_list("asset_id", flat=True))
