"""CSV statement parsing and validation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.statement_formats import (
    BALANCE_TYPES,
    MAX_ERRORS,
    PENDING_RECEIPT,
    SETTLED,
    StatementLine,
    StatementRejected,
    parse_statement,
)

from .helpers import APPLE, APPLE_BAD_CHECK_DIGIT, MICROSOFT, csv_bytes, make_isin, sample

AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def rejected(raw: bytes) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        parse_statement("csv", raw, AS_OF)
    return info.value


def test_sample_file_parses_to_expected_lines():
    result = parse_statement("csv", sample("statement.csv"), AS_OF)
    assert result.format == "csv"
    assert result.as_of == AS_OF
    assert result.lines == (
        StatementLine(2, APPLE, Decimal("125000"), "PORT-7781-0042", SETTLED),
        StatementLine(3, MICROSOFT, Decimal("18250.5"), "PORT-7781-0042", SETTLED),
        StatementLine(4, MICROSOFT, Decimal("1200"), "PORT-7781-0042", PENDING_RECEIPT),
        StatementLine(5, APPLE, Decimal("0.000001"), "PORT-7781-0099", SETTLED),
    )


def test_bom_crlf_and_trailing_blank_lines_are_accepted():
    raw = b"\xef\xbb\xbfisin,quantity,account,balance_type\r\n" + (
        f"{APPLE},10,A,settled\r\n\r\n\r\n".encode()
    )
    result = parse_statement("csv", raw, AS_OF)
    assert result.lines == (StatementLine(2, APPLE, Decimal("10"), "A", SETTLED),)


def test_columns_may_come_in_any_order_and_fields_are_trimmed():
    raw = csv_bytes(f" settled , A1 , 7.25 , {APPLE} ", header="balance_type,account,quantity,isin")
    assert parse_statement("csv", raw, AS_OF).lines == (
        StatementLine(2, APPLE, Decimal("7.25"), "A1", SETTLED),
    )


def test_quoted_account_with_comma():
    raw = csv_bytes(f'{APPLE},1,"Omnibus, client money",settled')
    assert parse_statement("csv", raw, AS_OF).lines[0].account == "Omnibus, client money"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("isin,quantity,account", "missing column(s) balance_type"),
        ("isin,quantity,account,balance_type,price", "unknown column(s) 'price'"),
        ("isin,qty,account,balance_type", "missing column(s) quantity"),
        ("isin,quantity,account,balance_type,isin", "repeated column(s) isin"),
        ("isin;quantity;account;balance_type", "separated by ';'"),
    ],
)
def test_header_errors_name_the_problem(header, expected):
    errors = rejected(csv_bytes(f"{APPLE},1,A,settled", header=header)).errors
    assert len(errors) == 1
    assert errors[0].line == 1 and errors[0].field == "header"
    assert expected in errors[0].message
    assert "isin,quantity,account,balance_type" in errors[0].message


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        (f"{APPLE_BAD_CHECK_DIGIT},1,A,settled", "isin", "wrong check digit"),
        (f"{APPLE_BAD_CHECK_DIGIT},1,A,settled", "isin", "should be '5'"),
        ("US037833100,1,A,settled", "isin", "wrong length: 11 characters"),
        ("US03783310-5,1,A,settled", "isin", "characters other than"),
        ("ZZ0378331005,1,A,settled", "isin", "not a known country code"),
        (",1,A,settled", "isin", "ISIN is missing"),
        (f"{APPLE},-5,A,settled", "quantity", "negative"),
        (f"{APPLE},abc,A,settled", "quantity", "not a plain decimal number"),
        (f"{APPLE},NaN,A,settled", "quantity", "not a plain decimal number"),
        (f"{APPLE},Infinity,A,settled", "quantity", "not a plain decimal number"),
        (f"{APPLE},-Infinity,A,settled", "quantity", "not a plain decimal number"),
        (f"{APPLE},1e3,A,settled", "quantity", "not a plain decimal number"),
        (f'{APPLE},"1,000",A,settled', "quantity", "not a plain decimal number"),
        (f"{APPLE},,A,settled", "quantity", "quantity is missing"),
        (f"{APPLE},1.1234567890123456789,A,settled", "quantity", "more than 18 decimal"),
        (f"{APPLE},{'9' * 21},A,settled", "quantity", "more than 20 integer digits"),
        (f"{APPLE},1,,settled", "account", "account is missing"),
        (f"{APPLE},1,{'x' * 65},settled", "account", "longer than 64"),
        (f"{APPLE},1,A,free", "balance_type", "'free' is unknown"),
        (f"{APPLE},1,A,Settled", "balance_type", "'Settled' is unknown"),
        (f"{APPLE},1,A,", "balance_type", "balance_type is missing"),
    ],
)
def test_field_errors_name_line_and_field(row, field, fragment):
    raw = csv_bytes(f"{MICROSOFT},1,A,settled", row)
    errors = rejected(raw).errors
    assert [(e.line, e.field) for e in errors] == [(3, field)]
    assert fragment in errors[0].message
    assert errors[0].message.startswith(f"line 3, field {field}: ")


def test_all_errors_are_reported_not_just_the_first():
    raw = csv_bytes(
        f"{APPLE_BAD_CHECK_DIGIT},-1,,bogus",
        f"{APPLE},1,A,settled",
        f"{MICROSOFT},NaN,A,settled",
        "only,three,fields",
    )
    errors = rejected(raw).errors
    assert [(e.line, e.field) for e in errors] == [
        (2, "isin"),
        (2, "quantity"),
        (2, "account"),
        (2, "balance_type"),
        (4, "quantity"),
        (5, None),
    ]
    assert "expected 4 fields, found 3" in errors[-1].message


def test_negative_zero_is_zero():
    assert parse_statement("csv", csv_bytes(f"{APPLE},-0.00,A,settled"), AS_OF).lines[
        0
    ].quantity == Decimal("0")


def test_zero_quantity_is_a_valid_holding():
    assert parse_statement("csv", csv_bytes(f"{APPLE},0,A,settled"), AS_OF).lines[
        0
    ].quantity == Decimal(0)


def test_lower_case_isin_is_normalised():
    line = parse_statement("csv", csv_bytes(f"{APPLE.lower()},1,A,settled"), AS_OF).lines[0]
    assert line.isin == APPLE


def test_conflicting_duplicate_names_both_lines():
    raw = csv_bytes(f"{APPLE},10,A,settled", f"{MICROSOFT},1,A,settled", f"{APPLE},12,A,settled")
    (error,) = rejected(raw).errors
    assert error.line == 4
    assert "conflicts with line 2" in error.message
    assert "10 there and 12 here" in error.message


def test_exact_duplicate_is_rejected_as_ambiguous():
    raw = csv_bytes(f"{APPLE},10,A,settled", f"{APPLE},10,A,settled")
    (error,) = rejected(raw).errors
    assert error.line == 3 and "duplicate of line 2" in error.message


def test_same_isin_in_other_account_or_balance_type_is_not_a_duplicate():
    raw = csv_bytes(
        f"{APPLE},10,A,settled", f"{APPLE},10,B,settled", f"{APPLE},3,A,pending_receipt"
    )
    assert len(parse_statement("csv", raw, AS_OF).lines) == 3


def test_latin1_file_is_rejected_with_byte_offset_and_line():
    raw = csv_bytes(f"{APPLE},1,A,settled", f"{APPLE},1,Müller,settled").decode().encode("latin-1")
    (error,) = rejected(raw).errors
    offset = raw.index(b"\xfc")
    assert error.line == 3
    assert f"byte offset {offset}" in error.message and "0xFC" in error.message
    assert "UTF-8" in error.message


def test_utf16_file_is_rejected_with_hint():
    raw = csv_bytes(f"{APPLE},1,A,settled").decode().encode("utf-16")
    (error,) = rejected(raw).errors
    assert "UTF-16" in error.message


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"\xef\xbb\xbf", b"   \r\n"])
def test_empty_file_is_an_empty_statement(raw):
    (error,) = rejected(raw).errors
    assert "empty statement" in error.message


def test_header_only_is_an_empty_statement():
    (error,) = rejected(b"isin,quantity,account,balance_type\n\n").errors
    assert "empty statement" in error.message and "no holdings" in error.message


def test_broken_quoting_is_reported_and_parsing_continues():
    raw = csv_bytes(f'{APPLE},1,"A"B,settled', f"{MICROSOFT},-1,A,settled")
    errors = rejected(raw).errors
    assert [(e.line, e.field) for e in errors] == [(2, None), (3, "quantity")]
    assert "not valid CSV" in errors[0].message


def test_control_characters_in_account_are_rejected():
    (error,) = rejected(csv_bytes(f"{APPLE},1,A\x00,settled")).errors
    assert error.field == "account" and "control characters" in error.message


def test_error_list_is_capped_and_says_how_many_more():
    rows = [f"{APPLE_BAD_CHECK_DIGIT},1,A{i},settled" for i in range(MAX_ERRORS + 250)]
    exc = rejected(csv_bytes(*rows))
    assert len(exc.errors) == MAX_ERRORS
    assert exc.omitted == 250
    assert exc.report().endswith("... and 250 more errors")
    assert exc.as_dicts()[-1]["message"] == "... and 250 more errors"


def test_as_of_is_passed_through_and_must_be_aware():
    assert parse_statement("csv", csv_bytes(f"{APPLE},1,A,settled")).as_of is None
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_statement("csv", csv_bytes(f"{APPLE},1,A,settled"), datetime(2026, 1, 1))


# --- property: any valid statement written as CSV parses back to the same lines ---------------

_countries = st.sampled_from(["US", "GB", "DE", "IE", "JP", "XS", "CH"])
_body = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=9, max_size=9)
isins = st.builds(lambda c, b: make_isin(c + b), _countries, _body)
quantities = st.integers(min_value=0, max_value=18).flatmap(
    lambda places: st.decimals(
        min_value=0, max_value=Decimal(10) ** 20 - 1, places=places, allow_nan=False
    )
)
accounts = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
    min_size=1,
    max_size=64,
).filter(lambda a: a == a.strip() and a.isprintable())
holdings = st.lists(
    st.tuples(isins, quantities, accounts, st.sampled_from(BALANCE_TYPES)),
    min_size=1,
    max_size=30,
    unique_by=lambda h: (h[0], h[2], h[3]),
)


@settings(max_examples=150, deadline=None)
@given(holdings=holdings, bom=st.booleans(), crlf=st.booleans())
def test_round_trip(holdings, bom, crlf):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["isin", "quantity", "account", "balance_type"])
    for isin, quantity, account, balance_type in holdings:
        writer.writerow([isin, format(quantity, "f"), account, balance_type])
    raw = (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()

    result = parse_statement("csv", raw, AS_OF)

    assert result.lines == tuple(
        StatementLine(i + 2, isin, quantity, account, balance_type)
        for i, (isin, quantity, account, balance_type) in enumerate(holdings)
    )
    assert all(isinstance(line.quantity, Decimal) for line in result.lines)
