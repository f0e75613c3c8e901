"""No poison records: any failure while checking an upload ends recorded, never in a 500 or stuck.

The hostile inputs are real: documents nested 100,000 deep, which made the parsers raise
RecursionError (HTTP 500, the statement left `received`, and every resume failing the same
way). Whether a parser refuses them (`rejected`) or still fails inside (an internal error,
recorded and counted until `failed`), the statement must reach a final state in a bounded
number of attempts and the uploader must get an answer, not a 500.
"""

import sys
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audits import statements
from audits.choices import StatementStatus
from audits.models import CustodianStatement, StatementLine
from audits.tasks import resume_stalled_statements
from tests.celery_worker import wait_for
from tests.statements.conftest import SAMPLES, upload

DEPTH = 100_000
DEEP_JSON = b'{"as_of": "2026-11-20T21:00:00Z", "holdings": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"


def deep_semt002() -> bytes:
    """The sample custody statement with 100,000 nested elements inside a quantity."""
    sample = (SAMPLES / "semt002_v11_custody_statement.xml").read_bytes()
    at = sample.index(b"<Qty>", sample.index(b"<AggtBal>")) + len(b"<Qty>")
    return sample[:at] + b"<Deep>" * DEPTH + b"</Deep>" * DEPTH + sample[at:]


HOSTILE = {"json": DEEP_JSON, "semt002": deep_semt002()}


@pytest.fixture(autouse=True)
def python_default_recursion_limit():
    """Run at Python's default recursion limit (1000), as the web and worker processes do.

    Importing web3 (the chain tests do) imports py_ecc, which raises the limit of the whole
    process to 100,000; with that, the C JSON decoder recurses 100,000 deep and overflows the
    C stack: a segfault, not an exception, which no service code can catch (the attempt counted
    before the check still bounds the retries). The parsers' own depth limit removes it.
    """
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(limit)


FINAL = {StatementStatus.REJECTED, StatementStatus.FAILED}


def as_if_stalled(statement: CustodianStatement) -> None:
    CustodianStatement.objects.filter(pk=statement.pk).update(
        received_at=timezone.now() - timedelta(hours=1)
    )


def assert_recorded(statement: CustodianStatement) -> None:
    """Rejected with a reason, or still received/failed with the error and the attempt counted."""
    if statement.status == StatementStatus.REJECTED:
        assert statement.rejection_report and statement.rejection_report[0]["message"]
    else:
        assert statement.status in (StatementStatus.RECEIVED, StatementStatus.FAILED)
        assert statement.check_error.startswith("RecursionError: "), statement.check_error
        assert statement.check_attempts >= 1
    assert not StatementLine.objects.filter(statement=statement).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "semt002"])
def test_a_deeply_nested_upload_is_answered_and_recorded_not_a_500(owner_api, fmt):
    response = upload(owner_api, HOSTILE[fmt], fmt=fmt, as_of=None)

    assert response.status_code in (202, 422), response.content[:500]
    statement = CustodianStatement.objects.get()
    assert_recorded(statement)
    body = response.json()
    body = body.get("statement", body)
    assert body["status"] == statement.status
    assert body["check_attempts"] == statement.check_attempts
    assert body["check_error"] == statement.check_error


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "semt002"])
def test_a_poison_upload_is_not_retried_for_ever(owner, custodian_a, settings, fmt):
    settings.STATEMENT_MAX_CHECK_ATTEMPTS = 3
    statement = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=HOSTILE[fmt], fmt=fmt
    ).statement
    runs = 0
    while statement.status not in FINAL:
        assert runs < 3, "still not final after the attempt limit"
        as_if_stalled(statement)
        assert statements.stalled_statements() == [statement.pk]
        statement = statements.resume_statement(statement.pk)
        runs += 1
    assert_recorded(statement)
    if statement.status == StatementStatus.FAILED:
        assert statement.check_attempts == 3
    # Final: never picked again, and resuming it again changes nothing.
    as_if_stalled(statement)
    assert statements.stalled_statements() == []
    assert statements.resume_statement(statement.pk).status == statement.status


@pytest.mark.django_db
def test_attempts_that_killed_their_process_count_too(owner, custodian_a, settings):
    """An attempt counts before it starts: one that never returned still uses up a try."""
    settings.STATEMENT_MAX_CHECK_ATTEMPTS = 2
    csv = b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n"
    submission = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=csv, fmt="csv",
        as_of=timezone.now() - timedelta(days=1),
    )  # fmt: skip
    statement = submission.statement
    assert statement.status == StatementStatus.ACCEPTED and statement.check_attempts == 1
    # The rows two attempts leave when each one's process dies mid-check (no outcome written).
    CustodianStatement.objects.filter(pk=statement.pk).update(
        status=StatementStatus.RECEIVED, check_attempts=2
    )
    StatementLine.objects.filter(statement=statement).delete()

    statement = statements.resume_statement(statement.pk)

    assert statement.status == StatementStatus.FAILED
    assert "did not finish in 2 attempt(s)" in statement.check_error
    assert not StatementLine.objects.filter(statement=statement).exists()


@pytest.mark.django_db
def test_the_portal_answers_a_poison_upload(client, owner):
    client.force_login(owner)
    response = client.post(
        "/portal/",
        {"file": SimpleUploadedFile("s.json", DEEP_JSON), "format": "json", "as_of": ""},
    )
    statement = CustodianStatement.objects.get()
    assert response.status_code == 302
    assert_recorded(statement)
    page = client.get(response["Location"]).content.decode()
    assert statement.status in page


@pytest.mark.django_db
def test_failed_statements_are_shown_filterable_and_retried_in_the_admin(
    client, admin_user, owner, custodian_a, settings
):
    """A statement whose every check died with its process (the parsers now refuse the deep
    documents above, so this is the way left to fail) is given up, shown, and re-tried."""
    from tests.statements.test_resume import interrupted

    statement = interrupted(custodian_a, owner)
    CustodianStatement.objects.filter(pk=statement.pk).update(
        check_attempts=settings.STATEMENT_MAX_CHECK_ATTEMPTS
    )
    statement = statements.resume_statement(statement.pk)
    assert statement.status == StatementStatus.FAILED
    client.force_login(admin_user)

    listing = client.get("/admin/audits/custodianstatement/?status__exact=failed").content
    assert f"/admin/audits/custodianstatement/{statement.pk}/change/".encode() in listing
    detail = client.get(f"/admin/audits/custodianstatement/{statement.pk}/change/").content
    assert b"the process stopped during it" in detail
    accepted = client.get("/admin/audits/custodianstatement/?status__exact=accepted").content
    assert f"/admin/audits/custodianstatement/{statement.pk}/change/".encode() not in accepted

    response = client.post(
        "/admin/audits/custodianstatement/",
        {"action": "retry_failed", "_selected_action": [statement.pk]},
        follow=True,
    )
    statement.refresh_from_db()
    # Its bytes are fine: with fresh attempts it is checked and accepted.
    assert statement.status == StatementStatus.ACCEPTED and statement.check_attempts == 1
    assert f"Re-tried 1 failed statement(s) ({statement.pk}: accepted)" in response.content.decode()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_gives_up_on_a_poison_upload(celery_worker_process, owner, custodian_a):
    """The real beat task on the real worker: attempts counted, then final, then left alone."""
    statement = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=DEEP_JSON, fmt="json"
    ).statement
    pk = statement.pk
    for attempt in range(2, 4):
        if statement.status in FINAL:
            break
        as_if_stalled(statement)
        resume_stalled_statements.delay()
        statement = wait_for(
            lambda a=attempt: CustodianStatement.objects.filter(
                pk=pk, check_attempts__gte=a
            ).first(),
            timeout=60,
        )
    statement = wait_for(
        lambda: CustodianStatement.objects.filter(pk=pk, status__in=FINAL).first(), timeout=60
    )
    assert statement.check_attempts <= 3
    assert statement.status in FINAL
    assert_recorded(statement)
    as_if_stalled(statement)
    assert statements.stalled_statements() == []
