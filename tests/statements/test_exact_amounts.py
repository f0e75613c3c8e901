"""Every quantity the parsers accept comes back exactly, on SQLite and on PostgreSQL.

SQLite used to store DecimalField(38, 18) as a float: 12345678901234567890.123456 came back as
12345678901234600000. These run on whichever backend the suite runs on (CI runs both).
"""

from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from audits import statements
from audits.models import Asset, CustodianStatement, StatementLine
from tests.statements.conftest import upload

# The extremes the parser allows: 20 integer digits, 18 decimals, zero, the smallest unit.
QUANTITIES = [
    "12345678901234567890.123456789012345678",
    "99999999999999999999.999999999999999999",
    "0",
    "0.000000000000000001",
    "1234567890123.123456",
    "12345678901234567890.123456",
]
ISIN = "US67066G1040"  # a registered asset allowing 18 decimals (below)
AS_OF = datetime(2026, 11, 20, 21, tzinfo=UTC)


def csv_of(quantities: list[str]) -> bytes:
    rows = [f"{ISIN},{q},ACC-{i},settled" for i, q in enumerate(quantities)]
    return ("isin,quantity,account,balance_type\n" + "\n".join(rows) + "\n").encode()


def eighteen(q: str) -> str:
    return format(Decimal(q).quantize(Decimal("1e-18"), context=Context(prec=60)), "f")


@pytest.fixture
def fine_asset(demo):
    return Asset.objects.create(code="NVDAx", name="NVIDIA", isin=ISIN, quantity_decimals=18)


@pytest.mark.django_db
def test_extremes_round_trip_through_upload_database_and_api(owner_api, fine_asset):
    response = upload(owner_api, csv_of(QUANTITIES))
    assert response.status_code == 201, response.content

    stored = list(StatementLine.objects.order_by("line_no").values_list("quantity", flat=True))
    assert stored == [Decimal(q) for q in QUANTITIES]
    assert [format(q, "f") for q in stored] == [eighteen(q) for q in QUANTITIES]

    lines = owner_api.get(response.json()["lines_url"]).json()["results"]
    assert [x["quantity"] for x in lines] == [eighteen(q) for q in QUANTITIES]


@pytest.mark.django_db
def test_totals_are_exact(owner, custodian_a, fine_asset, client):
    statement = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=csv_of(QUANTITIES), fmt="csv", as_of=AS_OF
    ).statement
    [row] = statements.holdings_summary(statement)
    total = Context(prec=60).create_decimal(0)
    for q in QUANTITIES:
        total = Context(prec=60).add(total, Decimal(q))
    assert row["quantity"] == total
    assert statements.plain_decimal(row["quantity"]) == "124691359037037025903.370368789012345678"
    client.force_login(owner)
    page = client.get(f"/portal/statements/{statement.pk}/").content.decode()
    assert "124691359037037025903.370368789012345678" in page


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["0.0000000000000000001", "123456789012345678901"])
def test_a_quantity_the_column_cannot_hold_is_refused_not_rounded(
    owner, custodian_a, fine_asset, bad
):
    statement = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=csv_of(["1"]), fmt="csv", as_of=AS_OF
    ).statement
    line = StatementLine.objects.get(statement=statement)
    line.quantity = Decimal(bad)
    with pytest.raises((Inexact, InvalidOperation)), transaction.atomic():
        line.save()
    line.refresh_from_db()
    assert line.quantity == 1


def test_plain_decimal():
    assert statements.plain_decimal(Decimal("1E+3")) == "1000"
    assert statements.plain_decimal(Decimal("1000.000000000000000000")) == "1000"
    assert statements.plain_decimal(Decimal("0E-18")) == "0"
    assert statements.plain_decimal(Decimal("12.250")) == "12.25"
    assert statements.plain_decimal(Decimal("0.000000000000000001")) == "0.000000000000000001"


BEFORE = ("audits", "0010_declared_as_of_for_csv")
AFTER = ("audits", "0012_exact_statement_quantities")


@pytest.mark.django_db(transaction=True)
def test_existing_lines_migrate_exactly(demo):
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([BEFORE])
        old = executor.loader.project_state([BEFORE]).apps
        statement_id = _old_statement_with_lines(old)
        if connection.vendor == "sqlite":  # the bug being fixed: floats in the column
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT quantity FROM audits_statementline WHERE statement_id = %s "
                    "ORDER BY line_no",
                    [statement_id],
                )
                rounded = [row[0] for row in cursor.fetchall()]
            assert rounded[0] == 1.2345678901234568e19
            assert rounded[4] == 1234567890123.1235

        executor = MigrationExecutor(connection)
        executor.migrate([AFTER])
        new = executor.loader.project_state([AFTER]).apps
        migrated = list(
            new.get_model("audits", "StatementLine")
            .objects.filter(statement_id=statement_id)
            .order_by("line_no")
            .values_list("quantity", flat=True)
        )
        assert migrated == [Decimal(q) for q in QUANTITIES]
        assert [format(q, "f") for q in migrated] == [eighteen(q) for q in QUANTITIES]
    finally:
        MigrationExecutor(connection).migrate(leaves)
    assert CustodianStatement.objects.filter(pk=statement_id).exists()


def _old_statement_with_lines(apps) -> int:
    """Rows as the old schema stored them: an accepted CSV statement and its lines."""
    import hashlib

    user = apps.get_model("auth", "User").objects.create(username="old-uploader")
    custodian = apps.get_model("audits", "Custodian").objects.order_by("pk").first()
    asset = apps.get_model("audits", "Asset").objects.create(
        code="NVDAx", name="NVIDIA", isin=ISIN, quantity_decimals=18
    )
    raw = csv_of(QUANTITIES)
    document = apps.get_model("audits", "RawDocument").objects.create(
        sha256=hashlib.sha256(raw).hexdigest(), content=raw, size=len(raw)
    )
    statement = apps.get_model("audits", "CustodianStatement").objects.create(
        custodian=custodian, uploaded_by=user, format="csv", raw=document, as_of=AS_OF,
        source="custodian-uploaded", status="accepted", line_count=len(QUANTITIES),
    )  # fmt: skip
    line_model = apps.get_model("audits", "StatementLine")
    for i, q in enumerate(QUANTITIES):
        line_model.objects.create(
            statement=statement, line_no=i + 2, isin=ISIN, asset=asset, quantity=Decimal(q),
            account=f"ACC-{i}", balance_type="settled",
        )  # fmt: skip
    return statement.pk
