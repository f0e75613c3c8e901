"""Exact refusals of the semt.002 reader: line, field and wording, pinned by mutation testing.

Documents are written one element per line here (not with helpers.semt002) so that the line
each refusal names is plain to see: line 1 the prolog, 2 Document, 3 SctiesBalCtdyRpt.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audits.core.statement_formats import (
    PENDING_DELIVERY,
    PENDING_RECEIPT,
    SETTLED,
    StatementLine,
    StatementRejected,
    parse_statement,
)

from .helpers import APPLE, MICROSOFT

NS = "urn:iso:std:iso:20022:tech:xsd:semt.002.001.11"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>'
DATE = "<StmtGnlDtls><StmtDtTm><DtTm>2026-11-24T21:00:00Z</DtTm></StmtDtTm></StmtGnlDtls>"
ACCOUNT = "<SfkpgAcct><Id>SAFE-1</Id></SfkpgAcct>"
AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def unit(q: str) -> str:
    return f"<Qty><Qty><Qty><Unit>{q}</Unit></Qty></Qty></Qty>"


def holding(isin: str = APPLE, aggregate: str = unit("10"), *extra: str) -> list[str]:
    """One BalForAcct over several lines: BalForAcct, ISIN, AggtBal, extras, end."""
    return [
        "<BalForAcct>",
        f"<FinInstrmId><ISIN>{isin}</ISIN></FinInstrmId>",
        f"<AggtBal>{aggregate}</AggtBal>" if aggregate else "",
        *extra,
        "</BalForAcct>",
    ]


def document(*body: str, date: str = DATE, account: str = ACCOUNT, ns: str = NS) -> bytes:
    lines = [PROLOG, f'<Document xmlns="{ns}">', "<SctiesBalCtdyRpt>", date, account, *body]
    return "\n".join([*lines, "</SctiesBalCtdyRpt>", "</Document>"]).encode()


def refusals(raw: bytes, as_of: datetime | None = None) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(StatementRejected) as info:
        parse_statement("semt002", raw, as_of)
    return [(e.line, e.field, e.message) for e in info.value.errors]


def test_a_dtd_is_refused_on_its_line():
    raw = (PROLOG + '\n<!DOCTYPE Document [<!ENTITY x "y">]>\n<Document/>').encode()
    assert refusals(raw) == [
        (2, None, "line 2: a DTD (<!DOCTYPE ...>) is not allowed in a statement; remove it")
    ]


def test_not_well_formed_names_line_and_column():
    ((line, field, message),) = refusals(f"{PROLOG}\n<Document>\n<a></b>".encode())
    assert (line, field) == (3, None)
    assert message.startswith("line 3: not well-formed XML: mismatched tag")
    assert message.endswith("(column 5)")
    # No element at all is a well-formedness error too, on the last line.
    ((line, _, message),) = refusals(PROLOG.encode() + b"\n<!-- nothing -->")
    assert line == 2 and message.startswith("line 2: not well-formed XML: no element found")


def test_wrong_namespace_and_missing_document_word_for_word():
    assert refusals(document(*holding(), ns="urn:example")) == [
        (2, None, "line 2: this is a urn:example document, not semt.002 (expected namespace "
         "urn:iso:std:iso:20022:tech:xsd:semt.002.001.NN)"),
    ]  # fmt: skip
    assert refusals(f"{PROLOG}\n<Document>\n</Document>".encode()) == [
        (2, None, "line 2: this is a no-namespace document, not semt.002 (expected namespace "
         "urn:iso:std:iso:20022:tech:xsd:semt.002.001.NN)"),
    ]  # fmt: skip
    assert refusals(f"{PROLOG}\n<Envelope>\n<Other/>\n</Envelope>".encode()) == [
        (2, None, "line 2: no semt.002 <Document> element found (namespace "
         "urn:iso:std:iso:20022:tech:xsd:semt.002.001.NN)"),
    ]  # fmt: skip


def test_a_document_is_found_three_levels_down_in_an_envelope_but_not_four():
    inner = document(*holding()).decode().split("\n", 1)[1]
    three = f"{PROLOG}\n<E><A><B>\n{inner}\n</B></A></E>".encode()
    assert len(parse_statement("semt002", three).lines) == 1
    four = f"{PROLOG}\n<E><A><B><C>\n{inner}\n</C></B></A></E>".encode()
    assert refusals(four)[0][2].startswith("line 2: no semt.002 <Document> element found")
    # An element named Document in another namespace is not taken for the report.
    other = f'{PROLOG}\n<E>\n<Document xmlns="urn:x"/>\n</E>'.encode()
    assert refusals(other)[0][2].startswith("line 2: no semt.002 <Document> element found")


def test_report_level_refusals_word_for_word():
    assert refusals(f'{PROLOG}\n<Document xmlns="{NS}">\n</Document>'.encode()) == [
        (2, None, "line 2: no SctiesBalCtdyRpt element under Document")
    ]
    assert refusals(document()) == [
        (3, None, "line 3: empty statement: no BalForAcct (holding) elements")
    ]
    assert refusals(document(*holding()).replace(b"UTF-8", b"ISO-8859-1")) == [
        (1, None, "line 1: the XML declaration says encoding 'ISO-8859-1'; ISO 20022 messages "
         "must be UTF-8"),
    ]  # fmt: skip
    assert refusals(b"  ") == [(None, None, "file: empty statement: the file is empty")]


def test_delta_and_sub_account_statements_are_refused_on_their_lines():
    date = DATE.replace("</StmtGnlDtls>", "\n<UpdTp><Cd>DELT</Cd></UpdTp></StmtGnlDtls>")
    account = ACCOUNT + "\n<SubAcctDtls><Id>S</Id></SubAcctDtls>"
    assert refusals(document(*holding(), date=date, account=account)) == [
        (5, "StmtGnlDtls/UpdTp/Cd", "line 5, field StmtGnlDtls/UpdTp/Cd: this is a delta "
         "statement (DELT) listing only changes; send a complete (COMP) statement of all "
         "holdings"),
        (7, "SubAcctDtls", "line 7, field SubAcctDtls: sub-account details are not supported; "
         "send one statement per safekeeping account"),
    ]  # fmt: skip


def test_statement_date_refusals_word_for_word():
    cases = [
        ("<StmtGnlDtls>\n</StmtGnlDtls>", (4, "StmtGnlDtls/StmtDtTm", "the statement date is "
         "missing")),
        ("<Other/>", (3, "StmtGnlDtls/StmtDtTm", "the statement date is missing")),
        ("<StmtGnlDtls>\n<StmtDt>\n<X/></StmtDt></StmtGnlDtls>", (5, "StmtGnlDtls/StmtDt",
         "expected a Dt or DtTm element")),
        ("<StmtGnlDtls>\n<StmtDt>\n<Dt>24.11.2026</Dt></StmtDt></StmtGnlDtls>", (6,
         "StmtGnlDtls/StmtDt/Dt", "'24.11.2026' is not an ISO date (YYYY-MM-DD)")),
        ("<StmtGnlDtls>\n<StmtDtTm>\n<DtTm>soon</DtTm></StmtDtTm></StmtGnlDtls>", (6,
         "StmtGnlDtls/StmtDtTm/DtTm", "'soon' is not an ISO date-time")),
    ]  # fmt: skip
    for date, (line, field, problem) in cases:
        assert refusals(document(*holding(), date=date)) == [
            (line, field, f"line {line}, field {field}: {problem}")
        ], date


def test_a_date_without_offset_is_utc_and_a_date_alone_yields_to_the_upload():
    date = "<StmtGnlDtls><StmtDtTm><DtTm>2026-11-24T21:00:00</DtTm></StmtDtTm></StmtGnlDtls>"
    assert parse_statement("semt002", document(*holding(), date=date)).as_of == AS_OF
    date = "<StmtGnlDtls><StmtDt><Dt>2026-11-24</Dt></StmtDt></StmtGnlDtls>"
    assert parse_statement("semt002", document(*holding(), date=date), AS_OF).as_of == AS_OF
    assert parse_statement("semt002", document(*holding(), date=date)).as_of == datetime(
        2026, 11, 24, tzinfo=UTC
    )
    # A full date-time in the file must match the upload's to the second.
    assert [
        f for _, f, _ in refusals(document(*holding()), datetime(2026, 11, 24, tzinfo=UTC))
    ] == ["as_of"]


def test_account_refusals_word_for_word():
    assert refusals(document(*holding(), account="<Other/>")) == [
        (3, "SfkpgAcct/Id", "line 3, field SfkpgAcct/Id: the safekeeping account is missing")
    ]
    account = "<SfkpgAcct>\n<Id>" + "x" * 65 + "</Id></SfkpgAcct>"
    assert refusals(document(*holding(), account=account)) == [
        (6, "SfkpgAcct/Id", "line 6, field SfkpgAcct/Id: account is longer than 64 characters")
    ]


def test_holding_refusals_name_their_line_and_path():
    raw = document(
        "<BalForAcct>",  # 6
        "<FinInstrmId><Desc>no isin</Desc></FinInstrmId>",
        "</BalForAcct>",
        *holding("US0378331000", ""),  # 9..12: bad ISIN, no aggregate
        *holding(MICROSOFT, "<ShrtLngInd>SHOR</ShrtLngInd>" + unit("1")),  # 13..16
        *holding(MICROSOFT, "<Qty>\n<Qty><FaceAmt>1</FaceAmt></Qty></Qty>"),  # 17..21
    )
    assert refusals(raw) == [
        (6, "BalForAcct[1]/FinInstrmId/ISIN", "line 6, field BalForAcct[1]/FinInstrmId/ISIN: "
         "ISIN is missing; holdings must be identified by ISIN"),
        (6, "BalForAcct[1]/AggtBal", "line 6, field BalForAcct[1]/AggtBal: the aggregate "
         "balance is missing"),
        (9, "BalForAcct[2]/AggtBal", "line 9, field BalForAcct[2]/AggtBal: the aggregate balance "
         "is missing"),
        (10, "BalForAcct[2]/FinInstrmId/ISIN", "line 10, field BalForAcct[2]/FinInstrmId/ISIN: "
         "ISIN 'US0378331000' has a wrong check digit: the last character should be '5' (a typo "
         "in the ISIN?)"),
        (15, "BalForAcct[3]/AggtBal/ShrtLngInd", "line 15, field BalForAcct[3]/AggtBal/ShrtLngInd:"
         " a short position (SHOR) is not a holding; reserves must be long"),
        (20, "BalForAcct[4]/AggtBal/Qty/Qty/FaceAmt", "line 20, field "
         "BalForAcct[4]/AggtBal/Qty/Qty/FaceAmt: FaceAmt quantities are not accepted; report the "
         "number of shares as Unit"),
    ]  # fmt: skip


def test_quantity_shape_refusals():
    raw = document(
        *holding(APPLE, "<ShrtLngInd>LONG</ShrtLngInd>"),  # 6..9: no Qty at all
        *holding(MICROSOFT, "<Qty>\n</Qty>"),  # 10..14: Qty without Unit
        *holding(APPLE, "<Qty>\n<Unit>1</Unit>\n<Unit>2</Unit></Qty>"),  # 15..20
        *holding(MICROSOFT, unit("-1"), "<BalBrkdwn>", "<SubBalTp><Cd>PEND</Cd></SubBalTp>",
                 "</BalBrkdwn>"),  # 21..27: a negative aggregate, a PEND without Qty
    )  # fmt: skip
    assert refusals(raw) == [
        (8, "BalForAcct[1]/AggtBal/Qty", "line 8, field BalForAcct[1]/AggtBal/Qty: no quantity in "
         "Unit (number of shares) found"),
        (12, "BalForAcct[2]/AggtBal/Qty", "line 12, field BalForAcct[2]/AggtBal/Qty: no quantity "
         "in Unit (number of shares) found"),
        (19, "BalForAcct[3]/AggtBal/Qty", "line 19, field BalForAcct[3]/AggtBal/Qty: more than "
         "one quantity given"),
        (23, "BalForAcct[4]/AggtBal/Qty/Qty/Qty/Unit", "line 23, field "
         "BalForAcct[4]/AggtBal/Qty/Qty/Qty/Unit: quantity '-1' is negative; a holding cannot be "
         "below zero"),
        (24, "BalForAcct[4]/BalBrkdwn[1]/Qty", "line 24, field BalForAcct[4]/BalBrkdwn[1]/Qty: "
         "the sub-balance quantity is missing"),
    ]  # fmt: skip


def test_in_transit_sub_balances_are_split_out_and_others_stay_settled():
    extra = [
        "<BalBrkdwn><SubBalTp><Prtry><Id>X</Id></Prtry></SubBalTp>" + unit("1") + "</BalBrkdwn>",
        "<BalBrkdwn><SubBalTp><Cd>BLOK</Cd></SubBalTp>" + unit("2") + "</BalBrkdwn>",
        "<BalBrkdwn><SubBalTp><Cd>PENR</Cd></SubBalTp>" + unit("3") + "</BalBrkdwn>",
        "<BalBrkdwn><SubBalTp><Cd>PEND</Cd></SubBalTp>" + unit("4") + "</BalBrkdwn>",
        "<BalBrkdwn><SubBalTp><Cd>PENR</Cd></SubBalTp>" + unit("0.5") + "</BalBrkdwn>",
    ]
    raw = document(*holding(APPLE, unit("100"), *extra), *holding(MICROSOFT, unit("7")))
    assert parse_statement("semt002", raw).lines == (
        StatementLine(6, APPLE, Decimal("92.5"), "SAFE-1", SETTLED),
        StatementLine(6, APPLE, Decimal("3.5"), "SAFE-1", PENDING_RECEIPT),
        StatementLine(6, APPLE, Decimal("4"), "SAFE-1", PENDING_DELIVERY),
        StatementLine(15, MICROSOFT, Decimal("7"), "SAFE-1", SETTLED),
    )


def test_sub_balances_above_the_aggregate_are_refused():
    pend = "<BalBrkdwn><SubBalTp><Cd>PEND</Cd></SubBalTp>" + unit("11") + "</BalBrkdwn>"
    assert refusals(document(*holding(APPLE, unit("10"), pend))) == [
        (8, "BalForAcct[1]/BalBrkdwn", "line 8, field BalForAcct[1]/BalBrkdwn: the PEND/PENR "
         "sub-balances (11) exceed the aggregate balance (10); sub-balances must be a breakdown "
         "of the aggregate"),
    ]  # fmt: skip


def test_long_quantities_keep_every_digit_through_the_subtraction():
    aggregate = "9" * 20 + "." + "9" * 18
    pend = "<BalBrkdwn><SubBalTp><Cd>PEND</Cd></SubBalTp>" + unit("0." + "0" * 17 + "1")
    lines = parse_statement(
        "semt002", document(*holding(APPLE, unit(aggregate), pend + "</BalBrkdwn>"))
    )
    assert lines.lines[0].quantity == Decimal("9" * 20 + "." + "9" * 17 + "8")


def test_a_date_time_with_an_offset_keeps_it():
    date = "<StmtGnlDtls><StmtDtTm><DtTm>2026-11-24T22:00:00+01:00</DtTm></StmtDtTm></StmtGnlDtls>"
    assert parse_statement("semt002", document(*holding(), date=date)).as_of == AS_OF
