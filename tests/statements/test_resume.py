"""Uploads interrupted before their checks finished are finished later, exactly once."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audits import statements
from audits.choices import StatementStatus
from audits.models import CustodianStatement, RawDocument, StatementLine
from audits.tasks import resume_stalled_statements
from tests.celery_worker import wait_for

CSV = b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n"
BAD_CSV = b"isin,quantity,account,balance_type\nUS0378331005,-5,ACC-1,settled\n"
AS_OF = datetime(2026, 11, 20, 21, tzinfo=UTC)


def interrupted(custodian, user, raw=CSV, header="", minutes_ago=30) -> CustodianStatement:
    """The rows an upload leaves when the process dies right after storing it."""
    digest = hashlib.sha256(raw).hexdigest()
    document = RawDocument.objects.create(sha256=digest, content=raw, size=len(raw))
    statement = CustodianStatement.objects.create(
        custodian=custodian, uploaded_by=user, format="csv", raw=document, as_of=AS_OF,
        source="custodian-uploaded", status=StatementStatus.RECEIVED, signature_header=header,
    )  # fmt: skip
    received = timezone.now() - timedelta(minutes=minutes_ago)
    CustodianStatement.objects.filter(pk=statement.pk).update(received_at=received)
    return statement


@pytest.mark.django_db
def test_the_signature_header_is_stored_with_the_bytes(owner, custodian_a, signing_key):
    header = signing_key(CSV)
    submission = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=CSV, fmt="csv", as_of=AS_OF,
        signature_header=header,
    )  # fmt: skip
    stored = CustodianStatement.objects.get(pk=submission.statement.pk)
    assert stored.signature_header == header
    assert stored.signature_status == "valid"


@pytest.mark.django_db
def test_a_stalled_upload_is_finished_from_its_stored_bytes_and_signature(
    owner, custodian_a, signing_key
):
    statement = interrupted(custodian_a, owner, header=signing_key(CSV))
    assert statements.stalled_statements() == [statement.pk]

    done = statements.resume_statement(statement.pk)

    assert done.status == StatementStatus.ACCEPTED
    assert done.signature_status == "valid" and done.source == "custodian-signed"
    assert list(done.lines.values_list("isin", "quantity")) == [("US0378331005", 1000)]
    assert statements.stalled_statements() == []


@pytest.mark.django_db
def test_a_stalled_bad_upload_is_rejected_with_its_report(owner, custodian_a):
    statement = interrupted(custodian_a, owner, raw=BAD_CSV)
    done = statements.resume_statement(statement.pk)
    assert done.status == StatementStatus.REJECTED
    assert [(e["line"], e["field"]) for e in done.rejection_report] == [(2, "quantity")]
    assert not StatementLine.objects.exists()


@pytest.mark.django_db
def test_an_upload_in_progress_is_not_stalled(owner, custodian_a):
    interrupted(custodian_a, owner, minutes_ago=2)
    assert statements.stalled_statements() == []
    assert statements.stalled_statements(now=timezone.now() + timedelta(minutes=9)) != []


@pytest.mark.django_db
def test_a_second_attempt_writes_nothing(owner, custodian_a):
    statement = interrupted(custodian_a, owner)
    stale_copy = CustodianStatement.objects.get(pk=statement.pk)  # as another process holds it
    assert statements.resume_statement(statement.pk).status == StatementStatus.ACCEPTED

    assert statements.process_statement(stale_copy, CSV, None) is False
    assert statements.resume_statement(statement.pk).status == StatementStatus.ACCEPTED
    assert StatementLine.objects.count() == 1


@pytest.mark.django_db
def test_an_admin_rejection_stands_against_a_late_finish(owner, admin_user, custodian_a):
    statement = interrupted(custodian_a, owner)
    stale_copy = CustodianStatement.objects.get(pk=statement.pk)
    statements.reject_statement(statement, admin_user, "bytes do not match the paper copy")

    assert statements.process_statement(stale_copy, CSV, None) is False
    statement.refresh_from_db()
    assert statement.status == StatementStatus.REJECTED
    assert not StatementLine.objects.exists()


@pytest.mark.django_db
def test_admin_action_finishes_only_statements_still_received(
    client, admin_user, owner, custodian_a
):
    stalled = interrupted(custodian_a, owner)
    decided = interrupted(custodian_a, owner, raw=BAD_CSV)
    statements.resume_statement(decided.pk)
    client.force_login(admin_user)

    response = client.post(
        "/admin/audits/custodianstatement/",
        {"action": "resume_selected", "_selected_action": [stalled.pk, decided.pk]},
        follow=True,
    )

    stalled.refresh_from_db()
    assert stalled.status == StatementStatus.ACCEPTED
    text = response.content.decode()
    assert f"Checked 1 statement(s) still received ({stalled.pk}: accepted)" in text
    assert "1 selected were already decided" in text


@pytest.mark.django_db
def test_the_resume_schedule_exists_after_migrate():
    task = PeriodicTask.objects.get(name="resume stalled statements")
    assert task.task == "audits.tasks.resume_stalled_statements"
    assert task.interval.every == 300


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_finishes_stalled_uploads(celery_worker_process, owner, custodian_a):
    statement = interrupted(custodian_a, owner)

    resume_stalled_statements.delay()

    wait_for(
        lambda: CustodianStatement.objects.filter(
            pk=statement.pk, status=StatementStatus.ACCEPTED
        ).first()
    )
    assert StatementLine.objects.filter(statement=statement).count() == 1
    assert "audits.tasks.resume_statement" in celery_worker_process.log()
