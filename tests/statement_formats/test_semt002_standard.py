"""semt.002 reading checked on messages built from the ISO 20022 schema (python-iso20022).

The messages come from iso20022_messages (dataclasses generated from the official XSDs), so
what is mandatory, where sub-accounts sit and how codes are spelt is the standard's, not ours.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from python_iso20022.semt.semt_002_001_11 import models as m
from xsdata.formats.dataclass.parsers import XmlParser

from audits.core.statement_formats import (
    PENDING_DELIVERY,
    PENDING_RECEIPT,
    SETTLED,
    Pagination,
    StatementLine,
    StatementRejected,
    parse_statement,
)

from .helpers import APPLE, MICROSOFT, NVIDIA, sample
from .iso20022_messages import (
    Document,
    balance,
    is_required,
    render,
    report,
    sub_account,
)


def parse(raw: bytes):
    return parse_statement("semt002", raw)


def rejected(raw: bytes) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        parse(raw)
    return info.value


def by_type(lines) -> dict[tuple[str, str, str], Decimal]:
    return {(ln.account, ln.isin, ln.balance_type): ln.quantity for ln in lines}


def holdings(lines) -> dict[tuple[str, str], Decimal]:
    """Per (ISIN, balance type), summed over accounts: what the service adds up."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for ln in lines:
        out[(ln.isin, ln.balance_type)] += ln.quantity
    return dict(out)


def test_the_v11_sample_is_valid_for_the_schema_bindings():
    # The hand-written sample parses into the generated classes (unknown elements would fail).
    parsed = XmlParser().from_bytes(sample("semt002_v11_custody_statement.xml"), Document)
    assert parsed.scties_bal_ctdy_rpt.stmt_gnl_dtls.stmt_bsis.cd.value == "SETT"


# --- 1. balance semantics -------------------------------------------------------------------


def test_aggregate_is_held_now_pending_figures_are_their_own_lines():
    # Old reading: settled = 1,250,000 - 40,000 - 75,000 = 1,135,000.
    raw = render(report(balance(APPLE, "1250000", ("PEND", "40000"), ("PENR", "75000"))))
    assert by_type(parse(raw).lines) == {
        ("SAFE-1", APPLE, SETTLED): Decimal("1250000"),
        ("SAFE-1", APPLE, PENDING_DELIVERY): Decimal("40000"),
        ("SAFE-1", APPLE, PENDING_RECEIPT): Decimal("75000"),
    }


def test_pending_above_the_aggregate_is_accepted():
    # Old reading: rejected because PEND + PENR (115) exceed the aggregate (100).
    raw = render(report(balance(APPLE, "100", ("PEND", "40"), ("PENR", "75"), ("AWAS", "60"))))
    assert by_type(parse(raw).lines)[("SAFE-1", APPLE, SETTLED)] == Decimal("100")


def test_a_pending_receipt_with_nothing_held_yet():
    raw = render(report(balance(APPLE, "0", ("PENR", "500"))))
    assert by_type(parse(raw).lines) == {
        ("SAFE-1", APPLE, SETTLED): Decimal("0"),
        ("SAFE-1", APPLE, PENDING_RECEIPT): Decimal("500"),
    }


def test_short_aggregate_is_never_a_holding():
    raw = render(report(balance(APPLE, "10", short_long="SHOR")))
    (error,) = rejected(raw).errors
    assert error.field == "BalForAcct[1]/AggtBal/ShrtLngInd" and "short position" in error.message


# --- 2. sub-accounts ------------------------------------------------------------------------


def test_sub_accounts_only_one_line_per_sub_account_and_isin():
    raw = render(
        report(
            sub_accounts=(
                sub_account(
                    "CLIENT-A", balance(APPLE, "700", ("PENR", "30")), balance(NVIDIA, "5")
                ),
                sub_account("CLIENT-B", balance(APPLE, "300", ("PEND", "20"))),
            )
        )
    )
    lines = parse(raw).lines
    assert by_type(lines) == {
        ("CLIENT-A", APPLE, SETTLED): Decimal("700"),
        ("CLIENT-A", APPLE, PENDING_RECEIPT): Decimal("30"),
        ("CLIENT-A", NVIDIA, SETTLED): Decimal("5"),
        ("CLIENT-B", APPLE, SETTLED): Decimal("300"),
        ("CLIENT-B", APPLE, PENDING_DELIVERY): Decimal("20"),
    }
    assert holdings(lines)[(APPLE, SETTLED)] == Decimal("1000")


def test_account_level_totals_beside_sub_accounts_are_not_counted_twice():
    raw = render(
        report(
            balance(APPLE, "1000", ("PEND", "20")),
            sub_accounts=(
                sub_account("CLIENT-A", balance(APPLE, "700")),
                sub_account("CLIENT-B", balance(APPLE, "300", ("PEND", "20"))),
            ),
        )
    )
    lines = parse(raw).lines
    assert {ln.account for ln in lines} == {"CLIENT-A", "CLIENT-B"}
    assert holdings(lines) == {(APPLE, SETTLED): Decimal("1000"), (APPLE, PENDING_DELIVERY): 20}


@pytest.mark.parametrize(
    ("account_level", "fragment"),
    [
        (balance(APPLE, "1001"), "settled balance of US0378331005 must be the total"),
        (balance(MICROSOFT, "5"), f"settled balance of {MICROSOFT}"),
        (balance(APPLE, "1000", ("PENR", "1")), "pending_receipt balance"),
    ],
)
def test_account_level_totals_that_disagree_with_sub_accounts_are_refused(account_level, fragment):
    raw = render(
        report(
            account_level,
            sub_accounts=(
                sub_account("CLIENT-A", balance(APPLE, "700")),
                sub_account("CLIENT-B", balance(APPLE, "300")),
            ),
        )
    )
    errors = rejected(raw).errors
    assert any(fragment in e.message for e in errors), errors


def test_sub_accounts_in_a_statement_that_says_it_has_none_are_refused():
    raw = render(
        report(sub_accounts=(sub_account("CLIENT-A", balance(APPLE, "7")),), sub_account_ind=False)
    )
    (error,) = rejected(raw).errors
    assert error.field == "StmtGnlDtls/SubAcctInd"


def test_the_indicator_contradiction_is_reported_even_beside_a_bad_sub_account_balance():
    bad = balance(APPLE, "7", short_long="SHOR")
    raw = render(report(sub_accounts=(sub_account("CLIENT-A", bad),), sub_account_ind=False))
    assert {e.field for e in rejected(raw).errors} == {
        "StmtGnlDtls/SubAcctInd",
        "SubAcctDtls[1]/BalForSubAcct[1]/AggtBal/ShrtLngInd",
    }


def test_sub_account_without_an_id_is_refused():
    document = report(sub_accounts=(sub_account("CLIENT-A", balance(APPLE, "7")),))
    document.scties_bal_ctdy_rpt.sub_acct_dtls[0].sfkpg_acct = None
    (error,) = rejected(render(document)).errors
    assert error.field == "SubAcctDtls[1]/SfkpgAcct/Id"


# --- 3. basis and completeness --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"basis": "TRAD"}, "StmtGnlDtls/StmtBsis/Cd", "trade-date basis"),
        ({"basis": "CONT"}, "StmtGnlDtls/StmtBsis/Cd", "contractual settlement date"),
        ({"update": "DELT"}, "StmtGnlDtls/UpdTp/Cd", "delta statement"),
    ],
)
def test_only_complete_settled_basis_statements(kwargs, field, fragment):
    (error,) = rejected(render(report(balance(APPLE, "1"), **kwargs))).errors
    assert (error.field, fragment in error.message) == (field, True)


@pytest.mark.parametrize(
    ("attribute", "choice", "element"),
    [
        ("stmt_bsis", m.StatementBasis7ChoiceSemt00200111, "StmtBsis"),
        ("upd_tp", m.UpdateType15ChoiceSemt00200111, "UpdTp"),
    ],
)
def test_proprietary_basis_or_update_type_is_refused(attribute, choice, element):
    document = report(balance(APPLE, "1"))
    proprietary = m.GenericIdentification30Semt00200111(id="SETL", issr="CSTD")
    setattr(document.scties_bal_ctdy_rpt.stmt_gnl_dtls, attribute, choice(prtry=proprietary))
    (error,) = rejected(render(document)).errors
    assert error.field == f"StmtGnlDtls/{element}/Prtry" and "proprietary" in error.message


@pytest.mark.parametrize(
    ("path", "model", "element", "field"),
    [
        ("pgntn", m.SecuritiesBalanceCustodyReportV11Semt00200111, "Pgntn", "Pgntn"),
        ("pgntn.pg_nb", m.Pagination1Semt00200111, "PgNb", "Pgntn/PgNb"),
        ("pgntn.last_pg_ind", m.Pagination1Semt00200111, "LastPgInd", "Pgntn/LastPgInd"),
        ("stmt_gnl_dtls.upd_tp", m.Statement73Semt00200111, "UpdTp", "StmtGnlDtls/UpdTp"),
        ("stmt_gnl_dtls.stmt_bsis", m.Statement73Semt00200111, "StmtBsis", "StmtGnlDtls/StmtBsis"),
        (
            "stmt_gnl_dtls.sub_acct_ind",
            m.Statement73Semt00200111,
            "SubAcctInd",
            "StmtGnlDtls/SubAcctInd",
        ),
        (
            "stmt_gnl_dtls.stmt_dt_tm",
            m.Statement73Semt00200111,
            "StmtDtTm",
            "StmtGnlDtls/StmtDtTm",
        ),
        (
            "bal_for_acct.aggt_bal.shrt_lng_ind",
            m.Balance17Semt00200111,
            "ShrtLngInd",
            "BalForAcct[1]/AggtBal/ShrtLngInd",
        ),
        (
            "bal_for_acct.aggt_bal",
            m.AggregateBalanceInformation42Semt00200111,
            "AggtBal",
            "BalForAcct[1]/AggtBal",
        ),
        (
            "bal_for_acct.bal_brkdwn.sub_bal_tp",
            m.SubBalanceInformation20Semt00200111,
            "SubBalTp",
            "BalForAcct[1]/BalBrkdwn[1]/SubBalTp",
        ),
        (
            "bal_for_acct.bal_brkdwn.qty",
            m.SubBalanceInformation20Semt00200111,
            "Qty",
            "BalForAcct[1]/BalBrkdwn[1]/Qty",
        ),
    ],
)
def test_a_missing_mandatory_element_is_an_error_not_a_default(path, model, element, field):
    # The schema (through the generated bindings) says the element is mandatory...
    assert is_required(model, element)
    document = report(balance(APPLE, "1250000", ("PEND", "40000")))
    *parents, name = path.split(".")
    node: object = document.scties_bal_ctdy_rpt
    for part in parents:
        node = getattr(node, part)
        if isinstance(node, list):
            node = node[0]
    setattr(node, name, None)
    # ... and a message without it is refused, naming it.
    errors = rejected(render(document)).errors
    assert field in [e.field for e in errors], errors


# --- 4. pages -------------------------------------------------------------------------------


def test_zero_padded_page_of_a_multi_page_statement():
    raw = render(report(balance(APPLE, "1"), page="00002", last=False))
    result = parse(raw)
    assert result.pagination == Pagination("STMT-20261124-1", 2, False)
    assert result.lines == (
        StatementLine(result.lines[0].line_no, APPLE, Decimal(1), "SAFE-1", SETTLED),
    )


@pytest.mark.parametrize(("written", "last"), [("1", True), ("0", False), ("true", True)])
def test_last_page_indicator_as_xs_boolean(written, last):
    raw = render(report(balance(APPLE, "1"), page="3", last=True))
    raw = raw.replace(b"<LastPgInd>true</LastPgInd>", f"<LastPgInd>{written}</LastPgInd>".encode())
    assert parse(raw).pagination == Pagination("STMT-20261124-1", 3, last)


def test_single_page_statement_needs_no_statement_id():
    raw = render(report(balance(APPLE, "1"), statement_id=None))
    assert parse(raw).pagination == Pagination(None, 1, True)


@pytest.mark.parametrize(("page", "last"), [("2", True), ("1", False), ("00007", False)])
def test_page_of_a_multi_page_statement_without_statement_id_is_refused(page, last):
    raw = render(report(balance(APPLE, "1"), page=page, last=last, statement_id=None))
    (error,) = rejected(raw).errors
    assert error.field == "StmtGnlDtls/StmtId" and "joined by" in error.message


def test_a_middle_page_may_carry_no_holdings():
    raw = render(report(page="2", last=False))
    result = parse(raw)
    assert (result.lines, result.pagination) == ((), Pagination("STMT-20261124-1", 2, False))


def test_a_single_page_statement_without_holdings_is_still_empty():
    (error,) = rejected(render(report())).errors
    assert "empty statement" in error.message


@pytest.mark.parametrize("page", ["0", "00000", "-1", "1.0", "abc", "123456", ""])
def test_page_number_must_be_a_positive_integer(page):
    raw = render(report(balance(APPLE, "1"), page="1"))
    raw = raw.replace(b"<PgNb>1</PgNb>", f"<PgNb>{page}</PgNb>".encode())
    errors = rejected(raw).errors
    assert [e.field for e in errors] == ["Pgntn/PgNb"]
    assert errors[0].line is not None


@pytest.mark.parametrize("indicator", ["yes", "TRUE", "", "2"])
def test_last_page_indicator_must_be_a_boolean(indicator):
    raw = render(report(balance(APPLE, "1")))
    raw = raw.replace(
        b"<LastPgInd>true</LastPgInd>", f"<LastPgInd>{indicator}</LastPgInd>".encode()
    )
    assert [e.field for e in rejected(raw).errors] == ["Pgntn/LastPgInd"]
