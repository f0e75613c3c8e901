"""Exact refusals of the semt.002 reader: line, field and wording, pinned by mutation testing.

Documents are written one element per line here (not with helpers.semt002) so that the line
each refusal names is plain to see: line 1 the prolog, 2 Document, 3 SctiesBalCtdyRpt.
"""

from __future__ import annotations

import re
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
PAGE = "<Pgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></Pgntn>"
WHEN = "<StmtDtTm><DtTm>2026-11-24T21:00:00Z</DtTm></StmtDtTm>"
CODES = (
    "<UpdTp><Cd>COMP</Cd></UpdTp><StmtBsis><Cd>SETT</Cd></StmtBsis><SubAcctInd>false</SubAcctInd>"
)
DATE = f"<StmtGnlDtls>{WHEN}{CODES}</StmtGnlDtls>"
ACCOUNT = "<SfkpgAcct><Id>SAFE-1</Id></SfkpgAcct>"
AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
LONG = "<ShrtLngInd>LONG</ShrtLngInd>"


def unit(q: str) -> str:
    return f"<Qty><Qty><Qty><Unit>{q}</Unit></Qty></Qty></Qty>"


def details(when: str = WHEN, codes: str = CODES) -> str:
    return f"<StmtGnlDtls>{when}{codes}</StmtGnlDtls>"


def holding(isin: str = APPLE, aggregate: str = LONG + unit("10"), *extra: str) -> list[str]:
    """One BalForAcct over several lines: BalForAcct, ISIN, AggtBal, extras, end."""
    return [
        "<BalForAcct>",
        f"<FinInstrmId><ISIN>{isin}</ISIN></FinInstrmId>",
        f"<AggtBal>{aggregate}</AggtBal>" if aggregate else "",
        *extra,
        "</BalForAcct>",
    ]


def document(
    *body: str, date: str = DATE, account: str = ACCOUNT, ns: str = NS, page: str = PAGE
) -> bytes:
    """Line 1 prolog, 2 Document, 3 SctiesBalCtdyRpt, 4 Pgntn, 5 StmtGnlDtls, 6 account."""
    head = [PROLOG, f'<Document xmlns="{ns}">', "<SctiesBalCtdyRpt>", page, date, account]
    return "\n".join([*head, *body, "</SctiesBalCtdyRpt>", "</Document>"]).encode()


def pending(code: str, q: str) -> str:
    return f"<BalBrkdwn><SubBalTp><Cd>{code}</Cd></SubBalTp>{unit(q)}</BalBrkdwn>"


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
        (3, None, "line 3: empty statement: no BalForAcct (holding) elements, nor "
         "SubAcctDtls/BalForSubAcct"),
    ]  # fmt: skip
    assert refusals(document(*holding()).replace(b"UTF-8", b"ISO-8859-1")) == [
        (1, None, "line 1: the XML declaration says encoding 'ISO-8859-1'; ISO 20022 messages "
         "must be UTF-8"),
    ]  # fmt: skip
    assert refusals(b"  ") == [(None, None, "file: empty statement: the file is empty")]


def test_missing_general_details_and_pagination_are_reported_on_the_report_line():
    assert refusals(document(*holding(), page="<X/>", date="<Y/>")) == [
        (3, "StmtGnlDtls", "line 3, field StmtGnlDtls: the statement general details are "
         "missing"),
        (3, "Pgntn", "line 3, field Pgntn: the pagination (Pgntn with PgNb and LastPgInd) is "
         "missing; it is mandatory, PgNb 1 and LastPgInd true for a statement in one message"),
    ]  # fmt: skip
    assert refusals(document(*holding(), page="<Pgntn>\n</Pgntn>")) == [
        (4, "Pgntn/PgNb", "line 4, field Pgntn/PgNb: the page number is missing"),
        (4, "Pgntn/LastPgInd", "line 4, field Pgntn/LastPgInd: the last-page indicator is "
         "missing"),
    ]  # fmt: skip
    page = "<Pgntn>\n<PgNb>123456</PgNb>\n<LastPgInd>yes</LastPgInd></Pgntn>"
    assert refusals(document(*holding(), page=page)) == [
        (5, "Pgntn/PgNb", "line 5, field Pgntn/PgNb: page number '123456' is not a positive "
         "whole number of at most 5 digits (leading zeros are fine)"),
        (6, "Pgntn/LastPgInd", "line 6, field Pgntn/LastPgInd: 'yes' is not true, false, 1 or 0"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("number", "page"), [("1", 1), ("00001", 1), ("99999", 99999), ("0", None), ("000000", None)]
)
def test_page_numbers_at_the_edges(number, page):
    # A statement id joins the pages; page 99999 of a statement that goes on is still read.
    date = details(codes="<StmtId>S-1</StmtId>" + CODES)
    raw = document(
        *holding(), page=f"<Pgntn><PgNb>{number}</PgNb><LastPgInd>0</LastPgInd></Pgntn>", date=date
    )
    if page is None:
        assert [f for _, f, _ in refusals(raw)] == ["Pgntn/PgNb"]
    else:
        parsed = parse_statement("semt002", raw).pagination
        assert (parsed.statement_id, parsed.page, parsed.last) == ("S-1", page, False)


def test_statement_id_edges():
    def with_id(statement_id: str) -> bytes:
        return document(*holding(), date=details(codes=f"\n<StmtId>{statement_id}</StmtId>{CODES}"))

    assert parse_statement("semt002", with_id("x" * 35)).pagination.statement_id == "x" * 35
    assert refusals(with_id("x" * 36)) == [
        (6, "StmtGnlDtls/StmtId", "line 6, field StmtGnlDtls/StmtId: the statement id must be 1 "
         "to 35 characters"),
    ]  # fmt: skip
    assert [m for _, _, m in refusals(with_id(" "))] == [
        "line 6, field StmtGnlDtls/StmtId: the statement id must be 1 to 35 characters"
    ]
    assert refusals(with_id("a&#9;b")) == [
        (6, "StmtGnlDtls/StmtId", "line 6, field StmtGnlDtls/StmtId: the statement id has "
         "control characters"),
    ]  # fmt: skip
    # Without a StmtId, only a page 1 that is also the last page is accepted.
    for number, last, words in [
        ("2", "true", "the last page"),
        ("1", "false", "more pages follow"),
    ]:
        page = f"<Pgntn><PgNb>{number}</PgNb><LastPgInd>{last}</LastPgInd></Pgntn>"
        assert refusals(document(*holding(), page=page)) == [
            (5, "StmtGnlDtls/StmtId", f"line 5, field StmtGnlDtls/StmtId: this is page {number} "
             f"of a statement sent in several messages ({words}) "
             "but it has no statement id; the pages of one statement are joined by "
             "StmtGnlDtls/StmtId"),
        ]  # fmt: skip
    single = parse_statement("semt002", document(*holding())).pagination
    assert (single.statement_id, single.page, single.last, single.single) == (None, 1, True, True)


def test_update_type_and_basis_refusals_word_for_word():
    cases = [
        ("<UpdTp>\n<Cd>DELT</Cd></UpdTp>", 6, "UpdTp/Cd", "this is a delta statement (DELT) "
         "listing only changes; send a complete (COMP) statement of all holdings"),
        ("<UpdTp>\n<Cd>XXXX</Cd></UpdTp>", 6, "UpdTp/Cd", "update type 'XXXX' is not COMP (a "
         "complete statement of all holdings)"),
        ("<UpdTp>\n<Prtry><Id>C</Id></Prtry></UpdTp>", 5, "UpdTp/Prtry", "a proprietary update "
         "type cannot be read with certainty; use the ISO code"),
        ("<UpdTp>\n</UpdTp>", 5, "UpdTp/Cd", "the update type code is missing"),
        ("<StmtBsis>\n<Cd>TRAD</Cd></StmtBsis>", 6, "StmtBsis/Cd", "this is a trade-date basis "
         "(TRAD) statement: its balances count trades that have not settled; send a "
         "settled-basis (SETT) statement"),
        ("<StmtBsis>\n<Cd>CONT</Cd></StmtBsis>", 6, "StmtBsis/Cd", "this is a contractual "
         "settlement date basis (CONT) statement: its balances count trades due to settle as if "
         "they had settled; send a settled-basis (SETT) statement"),
        ("<StmtBsis>\n<Cd>sett</Cd></StmtBsis>", 6, "StmtBsis/Cd", "statement basis 'sett' is not "
         "supported; send a settled-basis (SETT) statement"),
        ("<StmtBsis>\n<Prtry><Id>S</Id></Prtry></StmtBsis>", 5, "StmtBsis/Prtry", "a proprietary "
         "statement basis cannot be read with certainty; use the ISO code"),
        ("<SubAcctInd>\nno</SubAcctInd>", 5, "SubAcctInd", "'no' is not true, false, 1 or 0"),
    ]  # fmt: skip
    for replacement, line, field, problem in cases:
        name = replacement[1 : replacement.index(">")]
        codes = re.sub(f"<{name}>.*?</{name}>", lambda _, r=replacement: r, CODES)
        assert refusals(document(*holding(), date=details(codes=codes))) == [
            (line, f"StmtGnlDtls/{field}", f"line {line}, field StmtGnlDtls/{field}: {problem}")
        ], replacement
    assert refusals(document(*holding(), date=details(codes=""))) == [
        (5, "StmtGnlDtls/UpdTp", "line 5, field StmtGnlDtls/UpdTp: the update type is missing; "
         "it is a mandatory element of semt.002"),
        (5, "StmtGnlDtls/StmtBsis", "line 5, field StmtGnlDtls/StmtBsis: the statement basis is "
         "missing; it is a mandatory element of semt.002"),
        (5, "StmtGnlDtls/SubAcctInd", "line 5, field StmtGnlDtls/SubAcctInd: the sub-account "
         "indicator is missing; it is mandatory (false: holdings at account level, true: "
         "holdings per sub-account)"),
    ]  # fmt: skip


@pytest.mark.parametrize("written", ["false", "0"])
def test_sub_account_balances_beside_a_false_indicator_are_refused_on_the_first(written):
    sub = [
        "<SubAcctDtls><SfkpgAcct><Id>SUB-1</Id></SfkpgAcct>",
        "<BalForSubAcct><FinInstrmId><ISIN>" + APPLE + "</ISIN></FinInstrmId>",
        "<AggtBal>" + LONG + unit("1") + "</AggtBal></BalForSubAcct>",
        "<BalForSubAcct/></SubAcctDtls>",
    ]
    codes = CODES.replace(">false<", f">{written}<")
    assert (
        12, "StmtGnlDtls/SubAcctInd", "line 12, field StmtGnlDtls/SubAcctInd: SubAcctInd is "
        "false (no sub-account holdings) but SubAcctDtls lists balances; set SubAcctInd to true "
        "or report the holdings at account level",
    ) in refusals(document(*holding(), *sub, date=details(codes=codes)))  # fmt: skip


@pytest.mark.parametrize("written", ["true", "1"])
def test_sub_account_holdings_and_their_totals_at_the_edges(written):
    def sub(account: str, q: str, extra: str = "") -> list[str]:
        return [
            f"<SubAcctDtls><SfkpgAcct><Id>{account}</Id></SfkpgAcct>",
            f"<BalForSubAcct><FinInstrmId><ISIN>{APPLE}</ISIN></FinInstrmId>",
            f"<AggtBal>{LONG}{unit(q)}</AggtBal>{extra}</BalForSubAcct></SubAcctDtls>",
        ]

    codes = CODES.replace(">false<", f">{written}<")
    date = details(codes=codes)
    big = "9" * 19 + "." + "9" * 18  # twice this still has 20 integer digits
    subs = [*sub("S1", big), *sub("S2", big, pending("PENR", "1"))]
    parsed = parse_statement("semt002", document(*subs, date=date))
    assert parsed.lines == (
        StatementLine(8, APPLE, Decimal(big), "S1", SETTLED),
        StatementLine(11, APPLE, Decimal(big), "S2", SETTLED),
        StatementLine(11, APPLE, Decimal(1), "S2", PENDING_RECEIPT),
    )
    # An account-level total equal to the exact sum (40 digits) is checked, not added.
    total = "1" + "9" * 19 + "." + "9" * 17 + "8"  # big * 2, every digit
    totals = holding(APPLE, LONG + unit(total), pending("PENR", "1"))
    checked = parse_statement("semt002", document(*totals, *subs, date=date)).lines
    assert [ln.line_no for ln in checked] == [13, 16, 16]  # the sub-account lines only
    assert [(ln.isin, ln.quantity, ln.account, ln.balance_type) for ln in checked] == [
        (ln.isin, ln.quantity, ln.account, ln.balance_type) for ln in parsed.lines
    ]
    # One unit in the last decimal place off, or a type missing on either side, is refused.
    off = holding(APPLE, LONG + unit(total[:-1] + "7"))
    assert refusals(document(*off, *subs, date=date)) == [
        (7, "BalForAcct", f"line 7, field BalForAcct: SubAcctInd is true, so the account-level "
         f"settled balance of {APPLE} must be the total of its sub-accounts: it is "
         f"{total[:-1]}7, the sub-accounts add up to {total}"),
        (12, "BalForAcct", f"line 12, field BalForAcct: SubAcctInd is true, so the account-level "
         f"pending_receipt balance of {APPLE} must be the total of its sub-accounts: it is not "
         f"given, the sub-accounts add up to 1"),
    ]  # fmt: skip
    # An account-level holding of 0 with none in the sub-accounts agrees; 1 does not.
    zero = holding(MICROSOFT, LONG + unit("0"))
    assert len(parse_statement("semt002", document(*totals, *zero, *subs, date=date)).lines) == 3
    extra = holding(MICROSOFT, LONG + unit("1"))
    assert refusals(document(*totals, *extra, *subs, date=date)) == [
        (12, "BalForAcct", f"line 12, field BalForAcct: SubAcctInd is true, so the account-level "
         f"settled balance of {MICROSOFT} must be the total of its sub-accounts: it is 1, the "
         f"sub-accounts add up to 0"),
    ]  # fmt: skip
    nameless = "<SubAcctDtls>\n<BalForSubAcct/></SubAcctDtls>"
    assert refusals(document(nameless, date=date))[0] == (
        7, "SubAcctDtls[1]/SfkpgAcct/Id", "line 7, field SubAcctDtls[1]/SfkpgAcct/Id: the "
        "sub-account's safekeeping account id is missing",
    )  # fmt: skip
    long_id = "<SubAcctDtls><SfkpgAcct>\n<Id>" + "x" * 65 + "</Id></SfkpgAcct></SubAcctDtls>"
    assert refusals(document(*subs, long_id, date=date)) == [
        (14, "SubAcctDtls[3]/SfkpgAcct/Id", "line 14, field SubAcctDtls[3]/SfkpgAcct/Id: "
         "account is longer than 64 characters"),
    ]  # fmt: skip


def test_statement_date_refusals_word_for_word():
    cases = [
        ("\n", (5, "StmtGnlDtls/StmtDtTm", "the statement date is missing")),
        ("<StmtDt>\n<X/></StmtDt>", (5, "StmtGnlDtls/StmtDt", "expected a Dt or DtTm element")),
        ("<StmtDt>\n<Dt>24.11.2026</Dt></StmtDt>", (6, "StmtGnlDtls/StmtDt/Dt", "'24.11.2026' "
         "is not an ISO date (YYYY-MM-DD)")),
        ("<StmtDtTm>\n<DtTm>soon</DtTm></StmtDtTm>", (6, "StmtGnlDtls/StmtDtTm/DtTm", "'soon' is "
         "not an ISO date-time")),
    ]  # fmt: skip
    for when, (line, field, problem) in cases:
        assert refusals(document(*holding(), date=details(when=when))) == [
            (line, field, f"line {line}, field {field}: {problem}")
        ], when


def test_a_date_without_offset_is_utc_and_a_date_alone_yields_to_the_upload():
    when = "<StmtDtTm><DtTm>2026-11-24T21:00:00</DtTm></StmtDtTm>"
    assert parse_statement("semt002", document(*holding(), date=details(when))).as_of == AS_OF
    date = details("<StmtDt><Dt>2026-11-24</Dt></StmtDt>")
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
        (7, "SfkpgAcct/Id", "line 7, field SfkpgAcct/Id: account is longer than 64 characters")
    ]


def test_holding_refusals_name_their_line_and_path():
    raw = document(
        "<BalForAcct>",  # 7
        "<FinInstrmId><Desc>no isin</Desc></FinInstrmId>",
        "</BalForAcct>",
        *holding("US0378331000", ""),  # 10..13: bad ISIN, no aggregate
        *holding(MICROSOFT, "<ShrtLngInd>SHOR</ShrtLngInd>" + unit("1")),  # 14..17
        *holding(MICROSOFT, LONG + "<Qty>\n<Qty><FaceAmt>1</FaceAmt></Qty></Qty>"),  # 18..22
        *holding(APPLE, "<ShrtLngInd>long</ShrtLngInd>" + unit("1")),  # 23..26
        *holding(APPLE, unit("1")),  # 27..30
    )
    assert refusals(raw) == [
        (7, "BalForAcct[1]/FinInstrmId/ISIN", "line 7, field BalForAcct[1]/FinInstrmId/ISIN: "
         "ISIN is missing; holdings must be identified by ISIN"),
        (7, "BalForAcct[1]/AggtBal", "line 7, field BalForAcct[1]/AggtBal: the aggregate "
         "balance is missing"),
        (10, "BalForAcct[2]/AggtBal", "line 10, field BalForAcct[2]/AggtBal: the aggregate "
         "balance is missing"),
        (11, "BalForAcct[2]/FinInstrmId/ISIN", "line 11, field BalForAcct[2]/FinInstrmId/ISIN: "
         "ISIN 'US0378331000' has a wrong check digit: the last character should be '5' (a typo "
         "in the ISIN?)"),
        (16, "BalForAcct[3]/AggtBal/ShrtLngInd", "line 16, field BalForAcct[3]/AggtBal/ShrtLngInd:"
         " a short position (SHOR) is not a holding; reserves must be long"),
        (21, "BalForAcct[4]/AggtBal/Qty/Qty/FaceAmt", "line 21, field "
         "BalForAcct[4]/AggtBal/Qty/Qty/FaceAmt: FaceAmt quantities are not accepted; report the "
         "number of shares as Unit"),
        (25, "BalForAcct[5]/AggtBal/ShrtLngInd", "line 25, field BalForAcct[5]/AggtBal/ShrtLngInd:"
         " 'long' is not LONG or SHOR"),
        (29, "BalForAcct[6]/AggtBal/ShrtLngInd", "line 29, field BalForAcct[6]/AggtBal/ShrtLngInd:"
         " the short/long indicator is missing; it is mandatory (LONG for a holding)"),
    ]  # fmt: skip


def test_quantity_shape_refusals():
    raw = document(
        *holding(APPLE, LONG),  # 7..10: no Qty at all
        *holding(MICROSOFT, LONG + "<Qty>\n</Qty>"),  # 11..15: Qty without Unit
        *holding(APPLE, LONG + "<Qty>\n<Unit>1</Unit>\n<Unit>2</Unit></Qty>"),  # 16..21
        *holding(MICROSOFT, LONG + unit("-1"), "<BalBrkdwn>",
                 "<SubBalTp><Cd>PEND</Cd></SubBalTp>", "</BalBrkdwn>"),  # 22..28
        *holding(APPLE, LONG + unit("1"), "<BalBrkdwn>", "</BalBrkdwn>"),  # 29..34
    )  # fmt: skip
    assert refusals(raw) == [
        (9, "BalForAcct[1]/AggtBal/Qty", "line 9, field BalForAcct[1]/AggtBal/Qty: no quantity in "
         "Unit (number of shares) found"),
        (13, "BalForAcct[2]/AggtBal/Qty", "line 13, field BalForAcct[2]/AggtBal/Qty: no quantity "
         "in Unit (number of shares) found"),
        (20, "BalForAcct[3]/AggtBal/Qty", "line 20, field BalForAcct[3]/AggtBal/Qty: more than "
         "one quantity given"),
        (24, "BalForAcct[4]/AggtBal/Qty/Qty/Qty/Unit", "line 24, field "
         "BalForAcct[4]/AggtBal/Qty/Qty/Qty/Unit: quantity '-1' is negative; a holding cannot be "
         "below zero"),
        (25, "BalForAcct[4]/BalBrkdwn[1]/Qty", "line 25, field BalForAcct[4]/BalBrkdwn[1]/Qty: "
         "the sub-balance quantity is missing"),
        (32, "BalForAcct[5]/BalBrkdwn[1]/SubBalTp", "line 32, field "
         "BalForAcct[5]/BalBrkdwn[1]/SubBalTp: the sub-balance type is missing"),
    ]  # fmt: skip


def test_pending_sub_balances_are_their_own_lines_and_others_are_ignored():
    extra = [
        "<BalBrkdwn><SubBalTp><Prtry><Id>X</Id></Prtry></SubBalTp>" + unit("1") + "</BalBrkdwn>",
        pending("BLOK", "2"),
        pending("PENR", "3"),
        pending("PEND", "4"),
        f"<BalBrkdwn><SubBalTp><Cd>PEND</Cd></SubBalTp><Qty>{LONG}{unit('5')[5:]}</BalBrkdwn>",
    ]
    raw = document(*holding(APPLE, LONG + unit("100"), *extra[:4]), *holding(MICROSOFT))
    # The aggregate stays as it stands: nothing is subtracted; receipt before delivery.
    assert parse_statement("semt002", raw).lines == (
        StatementLine(7, APPLE, Decimal("100"), "SAFE-1", SETTLED),
        StatementLine(7, APPLE, Decimal("3"), "SAFE-1", PENDING_RECEIPT),
        StatementLine(7, APPLE, Decimal("4"), "SAFE-1", PENDING_DELIVERY),
        StatementLine(15, MICROSOFT, Decimal("10"), "SAFE-1", SETTLED),
    )
    # A sub-balance may carry its own LONG indicator; a SHOR one is refused.
    raw = document(*holding(APPLE, LONG + unit("0"), extra[4]))
    assert parse_statement("semt002", raw).lines[1] == StatementLine(
        7, APPLE, Decimal("5"), "SAFE-1", PENDING_DELIVERY
    )
    short = extra[4].replace("LONG", "SHOR")
    assert [f for _, f, _ in refusals(document(*holding(APPLE, LONG + unit("0"), short)))] == [
        "BalForAcct[1]/BalBrkdwn[1]/Qty/ShrtLngInd"
    ]


def test_pending_above_the_aggregate_is_read_and_a_second_pending_is_refused():
    raw = document(*holding(APPLE, LONG + unit("10"), pending("PEND", "11"), pending("PENR", "9")))
    assert [(ln.quantity, ln.balance_type) for ln in parse_statement("semt002", raw).lines] == [
        (Decimal(10), SETTLED),
        (Decimal(9), PENDING_RECEIPT),
        (Decimal(11), PENDING_DELIVERY),
    ]
    twice = document(
        *holding(APPLE, LONG + unit("10"), pending("PENR", "1"), "<BalBrkdwn><SubBalTp>",
                 "<Cd>PENR</Cd></SubBalTp>" + unit("2") + "</BalBrkdwn>"),
    )  # fmt: skip
    assert refusals(twice) == [
        (12, "BalForAcct[1]/BalBrkdwn[2]/SubBalTp/Cd", "line 12, field "
         "BalForAcct[1]/BalBrkdwn[2]/SubBalTp/Cd: a second PENR sub-balance for the same "
         "holding; give each once"),
    ]  # fmt: skip


def test_long_quantities_keep_every_digit():
    aggregate = "9" * 20 + "." + "9" * 18
    tiny = "0." + "0" * 17 + "1"
    raw = document(*holding(APPLE, LONG + unit(aggregate), pending("PEND", tiny)))
    assert [ln.quantity for ln in parse_statement("semt002", raw).lines] == [
        Decimal(aggregate),
        Decimal(tiny),
    ]


def test_a_date_time_with_an_offset_keeps_it():
    when = "<StmtDtTm><DtTm>2026-11-24T22:00:00+01:00</DtTm></StmtDtTm>"
    assert parse_statement("semt002", document(*holding(), date=details(when))).as_of == AS_OF


def test_pages_without_general_details_are_reported_on_the_pagination_line():
    assert refusals(document(*holding(), date="<Y/>")) == [
        (3, "StmtGnlDtls", "line 3, field StmtGnlDtls: the statement general details are "
         "missing"),
    ]  # fmt: skip
    page = "<Pgntn>\n<PgNb>2</PgNb><LastPgInd>true</LastPgInd></Pgntn>"
    assert refusals(document(*holding(), date="<Y/>", page=page)) == [
        (3, "StmtGnlDtls", "line 3, field StmtGnlDtls: the statement general details are "
         "missing"),
        (4, "StmtGnlDtls/StmtId", "line 4, field StmtGnlDtls/StmtId: this is page 2 of a "
         "statement sent in several messages (the last page) but it has no statement id; the "
         "pages of one statement are joined by StmtGnlDtls/StmtId"),
    ]  # fmt: skip


def test_every_bad_sub_balance_is_reported_not_only_the_first():
    raw = document(
        *holding(
            APPLE,
            LONG + unit("10"),
            "<BalBrkdwn><Qty/></BalBrkdwn>",  # 10: no type
            pending("PEND", "1"),
            pending("PEND", "2"),  # 12: a second PEND
            "<BalBrkdwn><SubBalTp><Cd>PENR</Cd></SubBalTp></BalBrkdwn>",  # 13: no quantity
            pending("PENR", "-1"),  # 14: a bad quantity
            "<BalBrkdwn><Qty/></BalBrkdwn>",  # 15: no type again
        )
    )
    assert [(line, field) for line, field, _ in refusals(raw)] == [
        (10, "BalForAcct[1]/BalBrkdwn[1]/SubBalTp"),
        (12, "BalForAcct[1]/BalBrkdwn[3]/SubBalTp/Cd"),
        (13, "BalForAcct[1]/BalBrkdwn[4]/Qty"),
        (14, "BalForAcct[1]/BalBrkdwn[5]/Qty/Qty/Qty/Unit"),
        (15, "BalForAcct[1]/BalBrkdwn[6]/SubBalTp"),
    ]


def test_a_qty_without_unit_is_named_on_the_qty_line():
    raw = document(*holding(APPLE, LONG + "\n<Qty>\n<Qty/></Qty>"))
    assert refusals(raw) == [
        (10, "BalForAcct[1]/AggtBal/Qty", "line 10, field BalForAcct[1]/AggtBal/Qty: no quantity "
         "in Unit (number of shares) found"),
    ]  # fmt: skip
