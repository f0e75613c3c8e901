"""Statements sent as several semt.002 messages (Pgntn): stored page by page, joined when whole.

The pages in samples/ are real multi-page messages: the same StmtId and as-of on each page,
zero-padded PgNb, LastPgInd only on page 3. Together they hold the four holdings of
tests/statement_formats/samples/semt002_v11_custody_statement.xml.
"""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audits import statements
from audits.choices import StatementStatus
from audits.models import Asset, CustodianStatement, StatementLine
from tests.statements.conftest import upload

pytestmark = pytest.mark.django_db

PAGES = Path(__file__).parent / "samples"
REF = "CSH-20261124-PORT7781"


def page(n: int) -> bytes:
    return (PAGES / f"semt002_3_pages_p{n}.xml").read_bytes()


def send(client, raw: bytes, **extra):
    return upload(client, raw, fmt="semt002", as_of=None, **extra)


def edited(n: int, old: str, new: str) -> bytes:
    raw = page(n).decode()
    assert old in raw
    return raw.replace(old, new, 1).encode()


def test_pages_in_any_order_join_into_one_accepted_statement(owner_api, extra_assets):
    third = send(owner_api, page(3))
    assert third.status_code == 201, third.content
    body = third.json()
    assert body["status"] == "incomplete"
    assert body["statement_ref"] == REF
    assert body["page_count"] == 3
    assert body["pages_missing"] == [1, 2]
    assert body["pages_summary"] == "pages 1, 2 of 3 missing"
    assert [p["page"] for p in body["pages"]] == [3]
    assert body["raw_url"] is None and body["sha256"] is None

    first = send(owner_api, page(1)).json()
    assert first["id"] == body["id"]
    assert (first["status"], first["pages_missing"]) == ("incomplete", [2])
    assert first["pages_summary"] == "page 2 of 3 missing"
    assert not StatementLine.objects.exists()

    last = send(owner_api, page(2))
    assert last.status_code == 201, last.content
    done = last.json()
    assert done["id"] == body["id"]
    assert done["status"] == "accepted"
    assert done["pages_missing"] == []
    assert done["pages_summary"] == "all 3 pages received"
    assert done["as_of"] == "2026-11-24T21:00:00Z"
    assert done["line_count"] == 6
    lines = owner_api.get(done["lines_url"]).json()["results"]
    assert [(x["isin"], x["balance_type"], x["quantity"].split(".")[0]) for x in lines] == [
        ("US0378331005", "settled", "125000"),
        ("US0378331005", "pending_delivery", "5000"),
        ("US67066G1040", "settled", "60000"),
        ("US67066G1040", "pending_receipt", "7500"),
        ("US78462F1030", "settled", "30000"),
        ("IE00B5BMR087", "settled", "42000"),
    ]
    assert list(StatementLine.objects.order_by("id").values_list("page", flat=True)) == [
        1,
        1,
        1,
        1,
        2,
        3,
    ]
    # Each page keeps its own bytes, downloadable byte for byte.
    for entry, n in zip(done["pages"], (1, 2, 3), strict=True):
        assert entry["page"] == n
        assert owner_api.get(entry["raw_url"]).content == page(n)
        stored = owner_api.get(f"/api/v1/statements/{entry['id']}/").json()
        assert (stored["status"], stored["part_of"], stored["page"]) == ("page", done["id"], n)
    # The list shows the statement, not its pages.
    listed = owner_api.get("/api/v1/statements/").json()
    assert [s["id"] for s in listed["results"]] == [done["id"]]
    assert owner_api.get(f"/api/v1/statements/{done['id']}/raw/").status_code == 404


def test_total_is_unknown_until_the_last_page_arrives(owner_api, extra_assets):
    body = send(owner_api, page(1)).json()
    assert body["status"] == "incomplete"
    assert body["page_count"] is None
    assert body["pages_summary"] == (
        "page 1 received; the last page has not arrived, so the total is unknown"
    )
    body = send(owner_api, page(2)).json()
    assert body["pages_summary"].startswith("pages 1-2 received; the last page has not arrived")
    body = send(owner_api, edited(2, "<PgNb>00002</PgNb>", "<PgNb>00004</PgNb>")).json()
    assert body["pages_missing"] == [3]
    assert body["pages_summary"] == (
        "page 3 missing; the last page has not arrived, so the total is unknown"
    )


def test_an_incomplete_statement_never_counts(owner_api, extra_assets):
    """Until its last page arrives, the statement standing for that as-of stays the old one."""
    single = (Path(__file__).parents[1] / "statement_formats" / "samples").joinpath(
        "semt002_v11_custody_statement.xml"
    )
    old = send(owner_api, single.read_bytes().replace(b"125000", b"125001")).json()
    assert old["status"] == "accepted"

    paged = send(owner_api, page(1)).json()
    send(owner_api, page(3))
    assert CustodianStatement.objects.get(pk=paged["id"]).status == StatementStatus.INCOMPLETE
    assert CustodianStatement.objects.get(pk=old["id"]).status == StatementStatus.ACCEPTED
    assert not StatementLine.objects.filter(statement_id=paged["id"]).exists()

    send(owner_api, page(2))
    superseded = CustodianStatement.objects.get(pk=old["id"])
    assert superseded.status == StatementStatus.SUPERSEDED
    assert superseded.superseded_by_id == paged["id"]


def test_a_page_number_sent_again_with_other_content_is_refused(owner_api, extra_assets):
    statement = send(owner_api, page(1)).json()
    response = send(owner_api, edited(1, "<Unit>125000</Unit>", "<Unit>125100</Unit>"))
    assert response.status_code == 422, response.content
    problem = response.json()
    (error,) = problem["errors"]
    assert error["field"] == "Pgntn/PgNb" and error["page"] == 1
    assert f"page 1 of statement '{REF}' (#{statement['id']})" in error["message"]
    assert "different content" in error["message"]
    refused = CustodianStatement.objects.get(pk=problem["statement"]["id"])
    assert refused.status == StatementStatus.REJECTED and refused.part_of is None
    # The statement keeps the page it had and stays open for the others.
    send(owner_api, page(2))
    done = send(owner_api, page(3)).json()
    assert done["status"] == "accepted"
    assert StatementLine.objects.get(isin="US0378331005", balance_type="settled").quantity == 125000


def test_the_same_page_again_is_a_repeat(owner_api, extra_assets):
    first = send(owner_api, page(1))
    again = send(owner_api, page(1))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "incomplete"
    assert CustodianStatement.objects.count() == 2  # the statement and its one page


def test_a_page_after_the_last_is_refused(owner_api, extra_assets):
    send(owner_api, page(3))
    after = send(owner_api, edited(2, "<PgNb>00002</PgNb>", "<PgNb>00004</PgNb>"))
    assert after.status_code == 422
    assert "comes after the last page, page 3" in after.json()["errors"][0]["message"]

    early_last = edited(2, "<LastPgInd>false</LastPgInd>", "<LastPgInd>true</LastPgInd>")
    response = send(owner_api, early_last)
    assert response.status_code == 422
    assert "says it is the last page, but page 3 was already received" in response.json()["detail"]
    assert CustodianStatement.objects.get(statement_ref=REF, part_of=None, raw=None).status == (
        "incomplete"
    )


def test_last_page_indicator_as_1_and_0(owner_api, extra_assets):
    one = edited(1, "<LastPgInd>false</LastPgInd>", "<LastPgInd>0</LastPgInd>")
    two = edited(3, "<PgNb>00003</PgNb>", "<PgNb>2</PgNb>").replace(
        b"<LastPgInd>true</LastPgInd>", b"<LastPgInd>1</LastPgInd>"
    )
    assert send(owner_api, one).json()["status"] == "incomplete"
    done = send(owner_api, two).json()
    assert (done["status"], done["page_count"], done["line_count"]) == ("accepted", 2, 5)


def test_assembly_checks_the_registry_again_and_names_page_and_line(owner_api, extra_assets):
    send(owner_api, page(2))
    send(owner_api, page(3))
    # The registry changes while page 1 is awaited: page 3's asset is gone.
    Asset.objects.filter(isin="IE00B5BMR087").delete()

    response = send(owner_api, page(1))

    assert response.status_code == 422, response.content
    body = response.json()
    assert body["statement"]["status"] == "rejected"
    assert body["statement"]["statement_ref"] == REF
    assert [(e["page"], e["line"], e["field"]) for e in body["errors"]] == [(3, 42, "isin")]
    assert body["errors"][0]["message"].startswith("page 3: line 42, field isin: IE00B5BMR087")
    assert not StatementLine.objects.exists()


def test_a_holding_on_two_pages_rejects_the_statement(owner_api, extra_assets):
    send(owner_api, page(1))
    send(owner_api, page(2))
    twice = edited(3, "<ISIN>IE00B5BMR087</ISIN>", "<ISIN>US78462F1030</ISIN>")
    response = send(owner_api, twice)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["page"] == 3 and error["line"] == 42
    assert "already listed on page 2, line 42" in error["message"]


def test_a_page_with_a_bad_line_is_refused_alone(owner_api, extra_assets):
    bad = edited(2, "<ISIN>US78462F1030</ISIN>", "<ISIN>US78462F1031</ISIN>")
    response = send(owner_api, bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].endswith("FinInstrmId/ISIN")
    assert not CustodianStatement.objects.filter(raw=None).exists()
    for n in (1, 2, 3):
        last = send(owner_api, page(n))
    assert last.json()["status"] == "accepted"


def test_every_page_signed_makes_the_statement_signed(owner_api, extra_assets, signing_key):
    for n in (1, 2, 3):
        body = send(owner_api, page(n), HTTP_X_STATEMENT_SIGNATURE=signing_key(page(n))).json()
    assert (body["status"], body["source"], body["signature_status"]) == (
        "accepted",
        "custodian-signed",
        "valid",
    )
    assert {p["signature_status"] for p in body["pages"]} == {"valid"}


def test_one_unsigned_page_leaves_the_statement_unsigned(owner_api, extra_assets, signing_key):
    send(owner_api, page(1), HTTP_X_STATEMENT_SIGNATURE=signing_key(page(1)))
    send(owner_api, page(2))
    body = send(owner_api, page(3), HTTP_X_STATEMENT_SIGNATURE=signing_key(page(3))).json()
    assert (body["status"], body["source"]) == ("accepted", "custodian-uploaded")
    assert [p["signature_status"] for p in body["pages"]] == ["valid", "none", "valid"]


def test_a_page_left_received_is_joined_when_resumed(owner, custodian_a, extra_assets):
    from tests.statements.test_resume import interrupted

    def submit(n):
        return statements.submit_statement(
            custodian=custodian_a, user=owner, raw=page(n), fmt="semt002"
        )

    statement = submit(1).statement
    submit(2)
    stalled = interrupted(custodian_a, owner, raw=page(3))
    CustodianStatement.objects.filter(pk=stalled.pk).update(
        format="semt002", as_of=None, declared_as_of=None
    )
    assert statements.stalled_statements() == [stalled.pk]

    statements.resume_statement(stalled.pk)

    statement.refresh_from_db()
    assert statement.status == StatementStatus.ACCEPTED
    assert statement.line_count == 6


def test_an_interrupted_assembly_is_finished_when_resumed(owner, custodian_a, extra_assets):
    for n in (1, 2, 3):
        statement = statements.submit_statement(
            custodian=custodian_a, user=owner, raw=page(n), fmt="semt002"
        ).statement
    # As if the process died between the last page's commit and the assembly.
    StatementLine.objects.filter(statement=statement).delete()
    CustodianStatement.objects.filter(pk=statement.pk).update(
        status=StatementStatus.RECEIVED, received_at=timezone.now() - timedelta(hours=1)
    )
    assert statements.stalled_statements() == [statement.pk]
    assert statements.resume_statement(statement.pk).status == StatementStatus.ACCEPTED
    assert StatementLine.objects.filter(statement=statement).count() == 6


def test_a_joint_check_killed_every_time_ends_failed_not_stuck(
    owner, custodian_a, extra_assets, settings
):
    """The joint check of the pages is a counted attempt like any other: a statement whose
    assembly kept dying is given up after its attempts, never resumed for ever."""
    for n in (1, 2, 3):
        statement = statements.submit_statement(
            custodian=custodian_a, user=owner, raw=page(n), fmt="semt002"
        ).statement
    assert statement.check_attempts == 1  # the assembly counted itself
    # As if every assembly so far had died mid-way.
    StatementLine.objects.filter(statement=statement).delete()
    CustodianStatement.objects.filter(pk=statement.pk).update(
        status=StatementStatus.RECEIVED, check_attempts=settings.STATEMENT_MAX_CHECK_ATTEMPTS
    )
    resumed = statements.resume_statement(statement.pk)
    assert resumed.status == StatementStatus.FAILED
    assert "did not finish" in resumed.check_error


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="concurrent writers need PostgreSQL (SQLite serialises whole transactions)",
)
@pytest.mark.django_db(transaction=True)
def test_pages_arriving_together_assemble_exactly_once(owner, custodian_a, extra_assets, caplog):
    """Pages 2 and 3 at the same moment: exactly one of them sees the statement whole.

    The test holds the statement's row lock until both uploads are waiting on a lock, so both
    are inside their page transactions at once. Without the custodian lock each would see only
    page 1 and itself, and neither would assemble the statement.
    """
    caplog.set_level("INFO", logger="audits.statements")
    statement = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=page(1), fmt="semt002"
    ).statement
    failures: list[BaseException] = []

    def send_page(n: int) -> None:
        from django.db import connection as thread_connection

        try:
            statements.submit_statement(
                custodian=custodian_a, user=owner, raw=page(n), fmt="semt002"
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=send_page, args=(n,)) for n in (2, 3)]
    with transaction.atomic():
        CustodianStatement.objects.select_for_update().get(pk=statement.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while _backends_waiting_on_locks() < 2:
            assert time.monotonic() < deadline, ("the two uploads never met", failures)
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    statement.refresh_from_db()
    assert statement.status == StatementStatus.ACCEPTED
    assert statement.lines.count() == 6
    assembled = [r for r in caplog.records if r.getMessage() == "statement assembled"]
    assert len(assembled) == 1


def _backends_waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction the activity view is a snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_an_old_incomplete_statement_is_flagged_in_the_admin(
    client, admin_user, owner_api, extra_assets, settings
):
    settings.STATEMENT_PAGES_DEADLINE = timedelta(hours=6)
    old = send(owner_api, page(1)).json()
    CustodianStatement.objects.filter(pk=old["id"]).update(
        received_at=timezone.now() - timedelta(hours=7)
    )
    fresh = send(owner_api, page(1).replace(REF.encode(), b"OTHER-REF")).json()
    client.force_login(admin_user)

    listing = client.get("/admin/audits/custodianstatement/").content.decode()
    assert "OVERDUE: incomplete for more than 6:00:00" in listing
    assert listing.count("OVERDUE") == 1

    overdue = client.get("/admin/audits/custodianstatement/?overdue=yes").content.decode()
    assert f"/admin/audits/custodianstatement/{old['id']}/change/" in overdue
    assert f"/admin/audits/custodianstatement/{fresh['id']}/change/" not in overdue

    detail = client.get(f"/admin/audits/custodianstatement/{old['id']}/change/").content.decode()
    assert "page 1 received; the last page has not arrived, so the total is unknown" in detail
    assert "OVERDUE" in detail


def test_admin_upload_of_a_page_says_what_is_missing(client, admin_user, custodian_a, extra_assets):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin_user)
    response = client.post(
        "/admin/audits/custodianstatement/upload/",
        {"custodian": custodian_a.pk, "file": SimpleUploadedFile("p3.xml", page(3)),
         "format": "semt002"},
        follow=True,
    )  # fmt: skip
    text = response.content.decode()
    statement = CustodianStatement.objects.get(raw=None)
    assert f"Statement #{statement.pk}: incomplete (pages 1, 2 of 3 missing)." in text
    assert "— (one per page)" in text


def test_portal_shows_an_incomplete_statement_and_its_pages(client, owner, outsider, extra_assets):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(owner)
    response = client.post(
        "/portal/", {"file": SimpleUploadedFile("p2.xml", page(2)), "format": "semt002"}
    )
    statement = CustodianStatement.objects.get(raw=None)
    assert response["Location"] == f"/portal/statements/{statement.pk}/"
    detail = client.get(response["Location"]).content.decode()
    assert "incomplete" in detail
    assert "page 1 missing; the last page has not arrived, so the total is unknown" in detail
    assert "does not count as reserves" in detail
    (stored,) = statement.pages.all()
    assert client.get(f"/portal/statements/{stored.pk}/raw").content == page(2)
    assert client.get(f"/portal/statements/{statement.pk}/raw").status_code == 404
    listing = client.get("/portal/").content.decode()
    assert "page 1 missing" in listing
    assert f'href="/portal/statements/{stored.pk}/"' not in listing

    client.force_login(outsider)
    assert client.get(f"/portal/statements/{statement.pk}/").status_code == 404
    assert client.get(f"/portal/statements/{stored.pk}/raw").status_code == 404
