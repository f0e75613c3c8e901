"""Which statement counts as reserves, per custodian and ISIN, and rejections that restore it."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audits import statements
from audits.choices import StatementStatus
from audits.models import Asset, CustodianStatement

pytestmark = pytest.mark.django_db

T1 = datetime(2026, 11, 19, 21, tzinfo=UTC)
T2 = datetime(2026, 11, 20, 21, tzinfo=UTC)
AAPL, MSFT = "US0378331005", "US5949181045"


def csv(*rows: tuple[str, str]) -> bytes:
    body = "".join(f"{isin},{qty},ACC-1,settled\n" for isin, qty in rows)
    return ("isin,quantity,account,balance_type\n" + body).encode()


def submit(custodian, user, raw: bytes, as_of: datetime) -> CustodianStatement:
    statement = statements.submit_statement(
        custodian=custodian, user=user, raw=raw, fmt="csv", as_of=as_of
    ).statement
    assert statement.status == StatementStatus.ACCEPTED, statement.rejection_report
    return statement


@pytest.fixture
def history(owner, custodian_a):
    """s1 (T1): AAPL and MSFT; s2 (T2): AAPL only; s3 (T2 again) superseded s2."""
    s1 = submit(custodian_a, owner, csv((AAPL, "1000"), (MSFT, "50")), T1)
    s2 = submit(custodian_a, owner, csv((AAPL, "1100")), T2)
    s3 = submit(custodian_a, owner, csv((AAPL, "1200")), T2)
    s2.refresh_from_db()
    assert s2.status == StatementStatus.SUPERSEDED and s2.superseded_by == s3
    return s1, s2, s3


def counting(custodian) -> dict[str, int]:
    isins = dict(Asset.objects.values_list("pk", "isin"))
    return {isins[a]: pk for (_, a), pk in statements.counting_statements([custodian.pk]).items()}


def test_the_latest_accepted_statement_counts_per_isin(history, custodian_a):
    s1, _s2, s3 = history
    assert counting(custodian_a) == {AAPL: s3.pk, MSFT: s1.pk}
    # As of a moment before T2, the T1 statement counted for both.
    earlier = statements.counting_statements([custodian_a.pk], now=T1 + timedelta(hours=1))
    assert set(earlier.values()) == {s1.pk}


def test_rejecting_the_newest_restores_what_it_superseded(history, custodian_a, admin_user):
    s1, s2, s3 = history
    statements.reject_statement(s3, admin_user, "booking error")
    s2.refresh_from_db()
    assert s2.status == StatementStatus.ACCEPTED and s2.superseded_by is None
    assert counting(custodian_a) == {AAPL: s2.pk, MSFT: s1.pk}
    assert s3.lines.count() == 1  # evidence kept


def test_rejecting_a_superseded_one_keeps_the_chain(owner, custodian_a, admin_user):
    a = submit(custodian_a, owner, csv((AAPL, "1")), T2)
    b = submit(custodian_a, owner, csv((AAPL, "2")), T2)
    c = submit(custodian_a, owner, csv((AAPL, "3")), T2)
    statements.reject_statement(b, admin_user, "wrong")
    a.refresh_from_db()
    assert a.superseded_by == c and a.status == StatementStatus.SUPERSEDED
    statements.reject_statement(c, admin_user, "wrong too")
    a.refresh_from_db()
    assert a.status == StatementStatus.ACCEPTED
    assert counting(custodian_a) == {AAPL: a.pk}


def test_the_admin_confirmation_names_what_will_count_afterwards(
    client, admin_user, history, custodian_a
):
    s1, s2, s3 = history
    client.force_login(admin_user)
    page = client.post(
        "/admin/audits/custodianstatement/",
        {"action": "reject_selected", "_selected_action": [s3.pk, s1.pk]},
    ).content.decode()
    table = page[page.index('id="after-rejection"') :]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    aapl = next(r for r in rows if f"AAPLx ({AAPL})" in r)
    msft = next(r for r in rows if f"MSFTx ({MSFT})" in r)
    assert f"statement {s2.pk}</a> (as of 2026-11-20 21:00" in aapl
    assert "none:" in msft and "will have no reserves of MSFTx" in msft
    # Nothing changed yet: the preview was rolled back.
    assert counting(custodian_a) == {AAPL: s3.pk, MSFT: s1.pk}
    s2.refresh_from_db()
    assert s2.status == StatementStatus.SUPERSEDED

    client.post(
        "/admin/audits/custodianstatement/",
        {"action": "reject_selected", "_selected_action": [s3.pk], "apply": "1",
         "reason": "booking error"},
    )  # fmt: skip
    assert counting(custodian_a) == {AAPL: s2.pk, MSFT: s1.pk}


def test_the_api_marks_what_counts(owner_api, history):
    s1, s2, s3 = history
    listed = {s["id"]: s["counts_as_reserves_for"] for s in owner_api.get(
        "/api/v1/statements/").json()["results"]}  # fmt: skip
    assert listed == {s1.pk: [MSFT], s2.pk: [], s3.pk: [AAPL]}
    assert owner_api.get(f"/api/v1/statements/{s1.pk}/").json()["counts_as_reserves_for"] == [MSFT]
    lines = owner_api.get(f"/api/v1/statements/{s1.pk}/lines/").json()["results"]
    assert {x["isin"]: x["counts_as_reserve"] for x in lines} == {AAPL: False, MSFT: True}


def row_of(page: str, href: str) -> str:
    return next(r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if href in r)


def test_the_portal_marks_what_counts(client, owner, history):
    s1, s2, s3 = history
    client.force_login(owner)
    page = client.get("/portal/").content.decode()
    assert '<span class="badge counts">MSFTx</span>' in row_of(page, f"/portal/statements/{s1.pk}/")
    assert "badge counts" not in row_of(page, f"/portal/statements/{s2.pk}/")
    assert '<span class="badge counts">AAPLx</span>' in row_of(page, f"/portal/statements/{s3.pk}/")
    detail = client.get(f"/portal/statements/{s1.pk}/").content.decode()
    assert '<td>AAPLx</td><td>settled</td><td class="num">1000</td>' in detail
    assert (
        '<td>MSFTx</td><td>settled</td><td class="num">50</td><td class="num">1</td>'
        '<td><span class="badge counts">counts</span>'
    ) in detail


def test_the_admin_marks_what_counts_with_plain_quantities(client, admin_user, history):
    s1, s2, _s3 = history
    client.force_login(admin_user)
    page = client.get("/admin/audits/custodianstatement/").content.decode()
    assert "<strong>MSFTx</strong>" in row_of(page, f"/admin/audits/custodianstatement/{s1.pk}/")
    assert "<strong>" not in row_of(page, f"/admin/audits/custodianstatement/{s2.pk}/change/")
    detail = client.get(f"/admin/audits/custodianstatement/{s1.pk}/change/").content.decode()
    assert "<td>AAPLx</td><td>settled</td><td>1000</td><td>1</td><td>no</td>" in detail
    assert "<td>MSFTx</td><td>settled</td><td>50</td><td>1</td><td>yes</td>" in detail
    assert "E+" not in detail
    lines = client.get(
        f"/admin/audits/statementline/?statement__id__exact={s1.pk}"
    ).content.decode()
    assert ">1000<" in lines and "E+" not in lines and "1000.000000" not in lines


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("", "needs its as-of"),
        ("2099-01-01T00:00:00Z", "is in the future"),
        ("2026-11-20 21:00", "has no UTC offset"),
        ("yesterday", "is not a date and time"),
    ],
)
def test_the_portal_form_refuses_a_bad_as_of_before_storing(client, owner, as_of, message):
    client.force_login(owner)
    response = client.post(
        "/portal/",
        {"file": SimpleUploadedFile("s.csv", csv((AAPL, "1"))), "format": "csv", "as_of": as_of},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not CustodianStatement.objects.exists()


def test_the_admin_form_refuses_a_future_as_of_before_storing(client, admin_user, custodian_b):
    client.force_login(admin_user)
    response = client.post(
        "/admin/audits/custodianstatement/upload/",
        {"custodian": custodian_b.pk, "file": SimpleUploadedFile("s.csv", csv((AAPL, "1"))),
         "format": "csv", "as_of": "2099-01-01T00:00:00Z"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "is in the future" in response.content.decode()
    assert not CustodianStatement.objects.exists()
