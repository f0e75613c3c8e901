"""Receive and build liability snapshots: raw first, rejection by line, roots, idempotency."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audits import liabilities, liability_files
from audits.core.liabilities import nonce_for
from audits.core.merkle import Asset as TreeAsset
from audits.core.merkle import build_tree, extract_proof, verify_proof
from audits.models import Asset, LiabilitySnapshot, LiabilityTree
from tests.liabilities.conftest import AS_OF, GOOD, chunks
from tests.threads import race

Status = LiabilitySnapshot.Status


def receive(user, raw: bytes, as_of=AS_OF):
    return liabilities.receive(user=user, chunks=chunks(raw), as_of=as_of)


@pytest.mark.django_db
def test_bad_file_is_stored_then_rejected_by_line(operator, django_capture_on_commit_callbacks):
    raw = (
        b"account_id,asset,balance\n"
        b"u-1,AAPLx,1\n"
        b"u-2,NOPEx,1\n"  # 3: unknown asset
        b"u-3,AAPLx,-1\n"  # 4: negative
        b"u-1,AAPLx,2\n"  # 5: duplicate
        b",MSFTx,1\n"  # 6: blank id
    )
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, created = receive(operator, raw)
    assert created and snapshot.status == Status.RECEIVED
    # Stored before any check, whatever is in it.
    with liability_files.open_raw(snapshot.raw_name) as handle:
        assert handle.read() == raw
    assert snapshot.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert snapshot.raw_size == len(raw)
    assert len(bytes(snapshot.secret)) == 32

    built = liabilities.build(snapshot.pk)
    assert built.status == Status.REJECTED
    assert built.error_count == 4
    assert [(e["line"], e["field"]) for e in built.errors] == [
        (3, "asset"), (4, "balance"), (5, "account_id"), (6, "account_id"),
    ]  # fmt: skip
    assert "duplicate of line 2" in built.errors[2]["message"]
    assert built.row_count == 5
    assert not LiabilityTree.objects.exists()
    assert list(liability_files.spool_dir().iterdir()) == []


@pytest.mark.django_db
def test_errors_capped_at_1000_with_the_count(operator, django_capture_on_commit_callbacks):
    raw = b"account_id,asset,balance\n" + b"".join(b"u-%d,AAPLx,1.x\n" % i for i in range(1500))
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, raw)
    built = liabilities.build(snapshot.pk)
    assert built.status == Status.REJECTED
    assert built.error_count == 1500
    assert len(built.errors) == 1000
    assert built.errors[-1]["line"] == 1001
    assert not LiabilityTree.objects.exists()


def _expected_root(snapshot, code: str, rows: list[tuple[str, int]], tmp_path):
    """The root over the same accounts by the tuple builder, nonces derived by HMAC."""
    secret = bytes(snapshot.secret)
    decimals = Asset.objects.get(code=code).decimals
    accounts = [(a, nonce_for(secret, a), [amount]) for a, amount in rows]
    return build_tree(
        accounts, 1, liabilities._pad_secret(secret), tmp_path / f"{code}.mst",
        snapshot=liabilities.snapshot_label(snapshot), assets=[TreeAsset(code, decimals)],
    )  # fmt: skip


@pytest.mark.django_db
def test_good_file_publishes_one_tree_per_asset(
    operator, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        snapshot, created = receive(operator, GOOD)
    assert created and len(queued) == 1
    built = liabilities.build(snapshot.pk)
    assert built.status == Status.PUBLISHED, built.failure
    assert (built.phase, built.progress, built.row_count) == ("published", 100, 4)
    assert built.published_at is not None and built.claimed_until is None
    trees = {t.asset.code: t for t in built.trees.select_related("asset")}
    assert set(trees) == {"AAPLx", "MSFTx"}  # SPYx and QQQx: named by no row, no tree
    one = 10**18
    aapl = [("u-1001", 12 * one + one // 2), ("u-1002", 1), ("u-1003", 250 * one)]
    msft = [("u-1001", 3 * one)]
    for code, rows in (("AAPLx", aapl), ("MSFTx", msft)):
        tree = trees[code]
        expected = _expected_root(built, code, rows, tmp_path)
        assert tree.root_hash == expected.root_hash.hex()
        assert tree.root_sum == Decimal(sum(a for _, a in rows))
        assert tree.account_count == len(rows)
        assert tree.leaf_count == expected.leaf_count
        expected_bytes = (tmp_path / f"{code}.mst").read_bytes()
        assert tree.file_sha256 == hashlib.sha256(expected_bytes).hexdigest()
        assert tree.file_size == len(expected_bytes)
    # A user's proof, read from the stored tree file, verifies.
    tree = trees["AAPLx"]
    path = liability_files.local_tree(tree.file_name, tree.file_sha256)
    nonce = nonce_for(bytes(built.secret), "u-1003")
    proof = extract_proof(path, account_id="u-1003", nonce=nonce)
    result = verify_proof(proof)
    assert result.valid and result.root_hash == tree.root_hash
    assert list(liability_files.spool_dir().iterdir()) == []


@pytest.mark.django_db
def test_publishing_queues_reconciliation_after_commit(
    operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, GOOD)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        liabilities.build(snapshot.pk)
    assert len(callbacks) == 1  # triggers.request_runs for the published assets, once


@pytest.mark.django_db
def test_same_upload_again_is_the_same_snapshot(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first, created = receive(operator, GOOD)
        again, created_again = receive(operator, GOOD)
        other, created_other = receive(operator, GOOD, as_of=AS_OF + timedelta(days=1))
    assert created and not created_again and again.pk == first.pk
    assert created_other and other.pk != first.pk
    assert LiabilitySnapshot.objects.count() == 2


@pytest.mark.django_db
def test_naive_as_of_is_refused(operator):
    with pytest.raises(ValueError, match="offset"):
        receive(operator, GOOD, as_of=AS_OF.replace(tzinfo=None))
    assert not LiabilitySnapshot.objects.exists()


@pytest.mark.django_db
def test_claimed_snapshot_is_not_built_twice(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, GOOD)
    first = liabilities.build(snapshot.pk)
    second = liabilities.build(snapshot.pk)
    assert first.status == second.status == Status.PUBLISHED
    assert second.attempts == 1
    assert LiabilityTree.objects.count() == 2
    # A live claim (checking, lease not run out) is not taken either.
    LiabilitySnapshot.objects.filter(pk=snapshot.pk).update(
        status=Status.CHECKING, claimed_until=timezone.now() + timedelta(minutes=5)
    )
    assert liabilities.build(snapshot.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_threads_build_once(operator):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the PostgreSQL run races two threads")
    snapshot, _ = receive(operator, GOOD)
    race(lambda: liabilities.build(snapshot.pk))
    snapshot.refresh_from_db()
    assert snapshot.status == Status.PUBLISHED and snapshot.attempts == 1
    assert LiabilityTree.objects.filter(snapshot=snapshot).count() == 2


@pytest.mark.django_db
def test_stale_claim_is_rebuilt_then_failed_after_max_attempts(
    operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, GOOD)
    now = timezone.now()

    def die_mid_build():
        """What a worker killed after claiming leaves: checking, a claim that will run out."""
        assert liabilities._claim(snapshot.pk) is not None
        LiabilitySnapshot.objects.filter(pk=snapshot.pk).update(
            claimed_until=now - timedelta(seconds=1), phase="building AAPLx", progress=40
        )

    die_mid_build()
    # The next sweep re-queues it; a worker then builds it (attempt 2) and publishes.
    assert liabilities.sweep(now) == {"requeued": [snapshot.pk], "failed": []}
    snapshot.refresh_from_db()
    assert snapshot.status == Status.RECEIVED and not snapshot.trees.exists()
    built = liabilities.build(snapshot.pk)
    assert built.status == Status.PUBLISHED and built.attempts == 2

    with django_capture_on_commit_callbacks(execute=False):
        other, _ = receive(operator, GOOD, as_of=AS_OF + timedelta(hours=1))
    snapshot = other
    for attempt in range(1, liabilities.MAX_ATTEMPTS + 1):
        die_mid_build()
        assert not LiabilityTree.objects.filter(snapshot=other).exists()
        swept = liabilities.sweep(now)
        if attempt < liabilities.MAX_ATTEMPTS:
            assert swept["requeued"] == [other.pk]
    assert swept == {"requeued": [], "failed": [other.pk]}
    other.refresh_from_db()
    assert other.status == Status.FAILED
    assert other.failure == f"the build was interrupted {liabilities.MAX_ATTEMPTS} times"
    assert liabilities.build(other.pk).status == Status.FAILED  # never built afterwards
    assert not LiabilityTree.objects.filter(snapshot=other).exists()


@pytest.mark.django_db
def test_a_lost_claim_publishes_nothing(operator, django_capture_on_commit_callbacks):
    """A worker presumed dead (its snapshot claimed again) cannot publish its trees."""
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, GOOD)
    claim = liabilities._claim(snapshot.pk)
    assert claim is not None
    LiabilitySnapshot.objects.filter(pk=snapshot.pk).update(attempts=claim.attempt + 1)
    liabilities._check_and_build(
        LiabilitySnapshot.objects.get(pk=snapshot.pk), claim, liability_files.spool_dir()
    )
    assert not LiabilityTree.objects.exists()
    assert LiabilitySnapshot.objects.get(pk=snapshot.pk).status == Status.CHECKING


@pytest.mark.django_db
def test_lost_task_is_queued_again(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, GOOD)
    assert liabilities.sweep() == {"requeued": [], "failed": []}  # just queued
    later = timezone.now() + liabilities.QUEUE_GRACE + timedelta(seconds=1)
    assert liabilities.sweep(later) == {"requeued": [snapshot.pk], "failed": []}


@pytest.mark.django_db
def test_failure_is_recorded_without_secret_or_path(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, GOOD)
    # The stored upload vanishes (a storage outage): the build fails and says only what kind.
    liability_files.storage().delete(snapshot.raw_name)
    built = liabilities.build(snapshot.pk)
    assert built.status == Status.FAILED
    assert built.failure.startswith("the build stopped on an internal error (")
    secret = bytes(built.secret)
    assert secret.hex() not in built.failure and "/" not in built.failure
    assert list(liability_files.spool_dir().iterdir()) == []


@pytest.mark.django_db
def test_latest_trees_picks_newest_published(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        old, _ = receive(operator, GOOD)
        new, _ = receive(operator, b"account_id,asset,balance\nu-9,AAPLx,1\n",
                         as_of=AS_OF + timedelta(days=1))  # fmt: skip
        receive(operator, GOOD, as_of=AS_OF + timedelta(days=2))  # not built: no trees
    liabilities.build(old.pk)
    liabilities.build(new.pk)
    aapl, msft, spy = (Asset.objects.get(code=c).pk for c in ("AAPLx", "MSFTx", "SPYx"))
    with django_assert_num_queries_ctx(1):
        latest = liabilities.latest_trees([aapl, msft, spy])
        assert latest[aapl].snapshot_id == new.pk
        assert latest[msft].snapshot_id == old.pk  # the newest snapshot that has one
    assert spy not in latest


def django_assert_num_queries_ctx(n):
    from django.test.utils import CaptureQueriesContext

    class Ctx(CaptureQueriesContext):
        def __exit__(self, *exc):
            super().__exit__(*exc)
            assert len(self.captured_queries) == n, self.captured_queries

    return Ctx(connection)


@pytest.mark.django_db
def test_sweep_runs_every_minute():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="sweep liability snapshots")
    assert task.task == "audits.tasks.sweep_liability_snapshots"
    assert task.interval.every == 60


@pytest.mark.django_db
def test_line_numbers_survive_long_lines_crlf_and_no_final_newline(
    operator, django_capture_on_commit_callbacks
):
    long_id = b"x" * (3 * 1024 * 1024)  # spans several read chunks; never held whole
    raw = (
        b"\xef\xbb\xbfaccount_id,asset,balance\r\n"
        b"u-1,AAPLx,1\r\n"
        + long_id + b",AAPLx,1\n"
        + b"u-2,AAPLx,1\rjunk\n"  # a lone CR is not a line end
        + b"u-3,AAPLx,2.5"  # no final newline
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, raw)
    built = liabilities.build(snapshot.pk)
    assert built.status == Status.REJECTED
    assert [(e["line"], e["field"]) for e in built.errors] == [(3, "line"), (4, "balance")]

    good = b"account_id,asset,balance\r\nu-1,AAPLx,1\r\nu-3,AAPLx,2.5"
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = receive(operator, good)
    built = liabilities.build(snapshot.pk)
    assert built.status == Status.PUBLISHED
    assert built.trees.get().root_sum == Decimal(35 * 10**17)
