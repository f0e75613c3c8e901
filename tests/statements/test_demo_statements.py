from datetime import UTC, datetime

import pytest

from audits import tokens
from audits.demo import demo_as_of, demo_token, ensure_user, load_demo_statements
from audits.models import Custodian, CustodianStatement

pytestmark = pytest.mark.django_db


def test_demo_statements_from_both_custodians(demo, tmp_path):
    for index, custodian in enumerate(Custodian.objects.order_by("lei"), start=1):
        ensure_user(
            f"custodian{index}", tmp_path / f"c{index}.txt", staff=False, custodian=custodian
        )
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    first, second = load_demo_statements(tmp_path, now=now)
    assert (first.status, first.source, first.format) == ("accepted", "custodian-signed", "csv")
    assert (second.status, second.source, second.format) == (
        "accepted",
        "custodian-uploaded",
        "semt002",
    )
    assert first.as_of == second.as_of == datetime(2026, 11, 24, 21, tzinfo=UTC)
    assert set(second.lines.values_list("balance_type", flat=True)) == {
        "settled",
        "pending_receipt",
    }
    # The semt.002 statement came as two pages, one holding each.
    assert (second.statement_ref, second.page_count, second.raw) == ("HB-20261124", 2, None)
    assert set(second.lines.values_list("page", "isin")) == {
        (1, "US78462F1030"),
        (2, "US46090E1038"),
    }
    # Loading again changes nothing: the same bytes are the same statements.
    assert [s.pk for s in load_demo_statements(tmp_path, now=now)] == [first.pk, second.pk]
    assert CustodianStatement.objects.count() == 4  # the CSV, the paged statement, its 2 pages


def test_demo_as_of_is_the_last_close():
    assert demo_as_of(datetime(2026, 11, 25, 22, tzinfo=UTC)) == datetime(
        2026, 11, 25, 21, tzinfo=UTC
    )
    assert demo_as_of(datetime(2026, 11, 25, 20, tzinfo=UTC)) == datetime(
        2026, 11, 24, 21, tzinfo=UTC
    )


def test_demo_token_is_reused_while_valid(owner, tmp_path):
    secret = demo_token(owner, tmp_path / "t.txt")
    assert demo_token(owner, tmp_path / "t.txt") == secret
    assert tokens.authenticate(secret) == owner
