"""Exact edges of the CSV parser and the shared field checks, pinned by mutation testing.

Limits are tested on both sides of the edge (20 integer digits accepted, 21 refused), and the
wording a custodian reads is asserted whole: a refusal must say exactly what is wrong.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import isin as stdnum_isin

from audits.core.statement_formats import (
    SETTLED,
    StatementLine,
    StatementRejected,
    decimal_places,
    parse_statement,
)
from audits.core.statement_formats.json_format import _plainly_valid
from audits.core.statement_formats.validation import (
    ErrorCollector,
    _check_digit,
    _check_isin,
    check_account,
    check_as_of,
    check_balance_type,
    decode_utf8,
    parse_quantity,
    reject,
)

from .helpers import APPLE, MICROSOFT, NVIDIA, csv_bytes, make_isin

AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def rejected(fmt: str, raw: bytes, as_of: datetime | None = AS_OF) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        parse_statement(fmt, raw, as_of)
    return info.value


def messages(exc: StatementRejected) -> list[tuple[int | None, str | None, str]]:
    return [(e.line, e.field, e.message) for e in exc.errors]


# --- CSV: rows ---------------------------------------------------------------------------------


def test_a_blank_row_between_holdings_is_skipped_and_later_holdings_still_count():
    raw = csv_bytes(f"{APPLE},1,A,settled", "", "   ", f"{MICROSOFT},2,A,settled")
    assert parse_statement("csv", raw, AS_OF).lines == (
        StatementLine(2, APPLE, Decimal(1), "A", SETTLED),
        StatementLine(5, MICROSOFT, Decimal(2), "A", SETTLED),
    )


def test_a_short_row_is_reported_and_the_rows_after_it_still_checked():
    raw = csv_bytes(
        f"{APPLE},1,A,settled",
        ",x",  # two fields, the first blank: not a blank line
        "junk",  # one non-blank field
        f"{MICROSOFT},-1,A,settled",
    )
    assert messages(rejected("csv", raw)) == [
        (3, None, "line 3: expected 4 fields, found 2"),
        (4, None, "line 4: expected 4 fields, found 1"),
        (5, "quantity", "line 5, field quantity: quantity '-1' is negative; a holding cannot "
         "be below zero"),
    ]  # fmt: skip


def test_errors_are_listed_in_line_order_whenever_they_were_found():
    # The duplicate on line 3 is found after the loop has reported line 4.
    raw = csv_bytes(f"{APPLE},1,A,settled", f"{APPLE},1,A,settled", f"{MICROSOFT},x,A,settled")
    assert [(line, field) for line, field, _ in messages(rejected("csv", raw))] == [
        (3, "isin"),
        (4, "quantity"),
    ]
    assert messages(rejected("csv", raw))[0][2] == (
        f"line 3, field isin: duplicate of line 2: {APPLE} in account 'A' (settled) is listed "
        "twice with the same quantity 1; list each holding once"
    )


def test_a_line_break_inside_a_quoted_field_is_kept_as_written():
    (error,) = rejected("csv", csv_bytes(f'{APPLE},1,"A\r\nB",settled')).errors
    # (The line named is the one the record ends on, 3.)
    assert error.message.endswith(r"field account: account 'A\r\nB' contains control characters")


def test_an_unreadable_header_is_refused_on_line_1():
    (error,) = rejected("csv", b'"isin"x,quantity,account,balance_type\n').errors
    assert (error.line, error.field) == (1, None)
    assert error.message.startswith("line 1: the header cannot be read as CSV: ")


def test_header_refusals_word_for_word():
    def header_error(header: str) -> str:
        (error,) = rejected("csv", csv_bytes(f"{APPLE},1,A,settled", header=header)).errors
        return error.message

    must = "; the header must be isin,quantity,account,balance_type"
    assert header_error("isin;quantity;account;balance_type") == (
        "line 1, field header: the header is separated by ';'; separate columns with ','" + must
    )
    # A ';' in one of several names is a wrong name, not a wrong separator.
    assert header_error("isin;x,quantity,account,balance_type") == (
        "line 1, field header: missing column(s) isin; unknown column(s) 'isin;x'" + must
    )
    assert header_error("isin,quantity,a,b,isin,quantity") == (
        "line 1, field header: missing column(s) account, balance_type; unknown column(s) "
        "'a', 'b'; repeated column(s) isin, quantity" + must
    )


def test_empty_statement_refusals_word_for_word():
    assert messages(rejected("csv", b"  \n")) == [
        (None, None, "file: empty statement: the file is empty")
    ]
    assert messages(rejected("csv", b"isin,quantity,account,balance_type\n")) == [
        (None, None, "file: empty statement: the file has a header but no holdings")
    ]


# --- ISIN --------------------------------------------------------------------------------------


def test_an_unknown_country_code_is_refused_even_with_a_valid_check_digit():
    isin = make_isin("ZZ037833100")  # the Luhn digit is right; ZZ is no country
    assert stdnum_isin.calc_check_digit(isin[:11]) == isin[11]
    assert _check_isin(isin) == (
        None,
        f"ISIN {isin!r} starts with 'ZZ', not a known country code",
    )
    assert _check_isin(isin.lower()) == (
        None,
        f"ISIN {isin.lower()!r} starts with 'ZZ', not a known country code",
    )
    (error,) = rejected("csv", csv_bytes(f"{isin},1,A,settled")).errors
    assert error.field == "isin"
    # The same body under a real country code, and XS (international), are accepted.
    assert _check_isin(make_isin("US037833100")) == (make_isin("US037833100"), None)
    assert _check_isin(make_isin("XS037833100")) == (make_isin("XS037833100"), None)


def test_isin_refusals_word_for_word():
    assert _check_isin("  ") == (None, "ISIN is missing")
    assert _check_isin("US0378331000") == (
        None,
        "ISIN 'US0378331000' has a wrong check digit: the last character should be '5' "
        "(a typo in the ISIN?)",
    )


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=11, max_size=11))
def test_the_fast_check_digit_is_the_standard_one(body):
    assert _check_digit(body) == stdnum_isin.calc_check_digit(body)


@pytest.mark.parametrize("body", ["US037833100", "US594918104", "US67066G104", "GB000000000"])
def test_the_fast_check_digit_on_known_isins(body):
    assert _check_digit(body) == stdnum_isin.calc_check_digit(body)
    assert make_isin("US037833100") == APPLE and make_isin("US67066G104") == NVIDIA


# --- quantity ----------------------------------------------------------------------------------


def test_exactly_20_integer_digits_are_accepted_and_21_refused():
    assert parse_quantity("9" * 20) == (Decimal("9" * 20), None)
    assert parse_quantity("1" + "0" * 19) == (Decimal(10) ** 19, None)
    assert parse_quantity("9" * 21) == (
        None,
        f"quantity {'9' * 21!r} has more than 20 integer digits",
    )
    # Leading zeros are not digits of the number.
    assert parse_quantity("000" + "9" * 20) == (Decimal("9" * 20), None)
    assert parse_quantity("0" + "9" * 21)[1] == (
        f"quantity {'0' + '9' * 21!r} has more than 20 integer digits"
    )


def test_exactly_18_decimal_places_are_accepted_and_19_refused():
    assert parse_quantity("0." + "1" * 18) == (Decimal("0." + "1" * 18), None)
    assert parse_quantity("0." + "1" * 19) == (
        None,
        f"quantity {'0.' + '1' * 19!r} has more than 18 decimal places",
    )


def test_quantity_refusals_word_for_word():
    assert parse_quantity(" ") == (None, "quantity is missing")
    assert parse_quantity("1e3") == (
        None,
        "quantity '1e3' is not a plain decimal number (digits, optionally a '.' and more "
        "digits; no exponent, sign, thousands separator, NaN or Infinity)",
    )


# --- account and balance type ------------------------------------------------------------------


def test_a_64_character_account_is_accepted_and_65_refused():
    assert check_account("x" * 64) == ("x" * 64, None)
    assert check_account(f"  {'x' * 64}  ") == ("x" * 64, None)  # measured after trimming
    assert check_account("x" * 65) == (None, "account is longer than 64 characters")
    lines = parse_statement("csv", csv_bytes(f"{APPLE},1,{'x' * 64},settled"), AS_OF).lines
    assert lines[0].account == "x" * 64


def test_account_and_balance_type_refusals_word_for_word():
    assert check_account("   ") == (None, "account is missing")
    assert check_balance_type(" ") == "balance_type is missing"
    assert check_balance_type("free") == (
        "balance_type 'free' is unknown; use one of settled, pending_receipt, pending_delivery"
    )
    assert check_balance_type(SETTLED) is None


# --- decimal places ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "places"),
    [("5.0", 0), ("5.00", 0), ("-5.0", 0), ("5.5", 1), ("5.50", 1), ("5", 0), ("5E+1", 0)],
)
def test_decimal_places_of_a_whole_number_written_with_a_fraction_is_zero(q, places):
    # The docstring: trailing zeros are ignored, so 5.0 has no decimal places and 5.50 one.
    assert decimal_places(Decimal(q)) == places


# --- file-level helpers ------------------------------------------------------------------------


def test_a_file_level_problem_says_file():
    assert str(reject("nothing here")) == "file: nothing here"
    errors = ErrorCollector()
    errors.add(None, None, "a")
    errors.add(7, None, "b")
    assert [e.message for e in errors.errors] == ["file: a", "line 7: b"]


def test_file_level_errors_come_before_line_1():
    errors = ErrorCollector("holding")
    errors.add(1, "$.holdings[0].isin", "bad")
    errors.add(None, "$.as_of", "bad date")
    with pytest.raises(StatementRejected) as info:
        errors.raise_if_any()
    assert [e.line for e in info.value.errors] == [None, 1]
    assert info.value.errors[1].message == "holding 1, field $.holdings[0].isin: bad"


def test_not_utf8_names_the_text_line_counted_from_the_first_byte():
    with pytest.raises(StatementRejected) as info:
        decode_utf8(b"\nA\xff")
    assert messages(info.value) == [
        (
            2,
            None,
            "line 2: file is not valid UTF-8: byte 0xFF at byte offset 2 (text line 2) cannot "
            "be decoded; save the file as UTF-8",
        )
    ]
    # Where the line number means something else (a JSON holding), it is only in the text.
    with pytest.raises(StatementRejected) as info:
        decode_utf8(b"\nA\xff", line_is_text_line=False)
    assert info.value.errors[0].line is None


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_is_named_whatever_its_byte_order(codec):
    bom = b"\xff\xfe" if codec == "utf-16-le" else b"\xfe\xff"
    with pytest.raises(StatementRejected) as info:
        decode_utf8(bom + "isin\n".encode(codec))
    assert info.value.errors[0].message.startswith(
        "line 1: file is not valid UTF-8 (the file looks like UTF-16): byte 0x"
    )


def test_as_of_must_be_aware_word_for_word():
    with pytest.raises(ValueError) as info:
        check_as_of(None, datetime(2026, 1, 1), ErrorCollector())
    assert str(info.value) == "as_of must be timezone-aware"


def test_a_date_only_statement_is_compared_in_utc_whatever_the_server_zone(monkeypatch):
    # 23:30 on the 24th at UTC-5 is the 25th in UTC: not the statement's date (the 24th),
    # even on a server whose local zone is UTC-5.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        upload = datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
        errors = ErrorCollector()
        file_day = datetime(2026, 11, 24, tzinfo=UTC)
        assert check_as_of(file_day, upload, errors, date_only=True) == file_day
        assert [e.field for e in errors.errors] == ["as_of"]
        same_day = datetime(2026, 11, 24, 18, 0, tzinfo=timezone(timedelta(hours=-5)))
        assert check_as_of(file_day, same_day, ErrorCollector(), date_only=True) == same_day
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- JSON --------------------------------------------------------------------------------------


def _doc(*holdings: object, as_of: object = "2026-11-24T21:00:00Z") -> bytes:
    body: dict[str, object] = {"holdings": list(holdings)}
    if as_of is not None:
        body["as_of"] = as_of
    return json.dumps(body).encode()


def _holding(**overrides: object) -> dict[str, object]:
    return {"isin": APPLE, "quantity": "10", "account": "A", "balance_type": "settled", **overrides}


def test_the_json_fast_path_vouches_for_plain_holdings_up_to_the_edges():
    # It exists so 100,000 plain holdings skip jsonschema; it must say yes to them.
    assert _plainly_valid(_holding())
    assert _plainly_valid(_holding(account="x"))
    assert _plainly_valid(_holding(account="x" * 64))
    assert not _plainly_valid(_holding(account=""))
    assert not _plainly_valid(_holding(account="x" * 65))
    assert not _plainly_valid(_holding(balance_type="free"))
    assert not _plainly_valid(_holding(quantity=10))
    assert not _plainly_valid([_holding()])


def test_json_account_length_edges_word_for_word():
    assert parse_statement("json", _doc(_holding(account="x" * 64))).lines[0].account == "x" * 64
    assert messages(rejected("json", _doc(_holding(account="x" * 65)), None)) == [
        (1, "$.holdings[0].account", f"holding 1, field $.holdings[0].account: '{'x' * 65}' is "
         "too long"),
    ]  # fmt: skip


def test_json_invalid_utf8_names_no_holding():
    (error,) = rejected("json", b'{"as_of": "\xff"}').errors
    assert error.line is None and "(text line 1)" in error.message


def test_json_empty_and_empty_holdings_word_for_word():
    assert messages(rejected("json", b" ")) == [
        (None, None, "file: empty statement: the file is empty")
    ]
    # The empty list is reported with every other problem, not alone.
    assert messages(rejected("json", _doc(as_of="yesterday"), None)) == [
        (None, "$.holdings", "file, field $.holdings: empty statement: holdings is an empty list"),
        (None, "$.as_of", "file, field $.as_of: 'yesterday' is not a date-time like "
         "2026-11-24T21:00:00Z"),
    ]  # fmt: skip


def test_json_type_errors_name_the_field_and_drop_nothing_silently():
    raw = _doc(
        _holding(isin={"a": 1}),
        _holding(quantity=None),
        _holding(quantity=12.5),
        _holding(quantity=True),
        as_of=None,
    )
    assert messages(rejected("json", raw, AS_OF)) == [
        (None, "$.as_of", "file, field $.as_of: as_of is missing"),
        (1, "$.holdings[0].isin", "holding 1, field $.holdings[0].isin: {'a': 1} is not of type "
         "'string'"),
        (2, "$.holdings[1].quantity", 'holding 2, field $.holdings[1].quantity: quantity must be '
         'a string such as "1500"'),
        (3, "$.holdings[2].quantity", 'holding 3, field $.holdings[2].quantity: quantity must be '
         'a string such as "12.5", not a JSON number (JSON numbers lose precision in many '
         'encoders)'),
        (4, "$.holdings[3].quantity", 'holding 4, field $.holdings[3].quantity: quantity must be '
         'a string such as "1500"'),
    ]  # fmt: skip


def test_json_holdings_that_are_not_a_list_or_not_objects():
    assert messages(rejected("json", json.dumps({"as_of": "2026-11-24T21:00:00Z",
                                                  "holdings": "x"}).encode(), None)) == [
        (None, "$.holdings", "file, field $.holdings: 'x' is not of type 'array'"),
    ]  # fmt: skip
    # A holding that is not an object does not stop the checks of the holdings after it.
    errors = rejected("json", _doc(42, _holding(isin="US0378331000")), None).errors
    assert [(e.line, e.field) for e in errors] == [
        (1, "$.holdings[0]"),
        (2, "$.holdings[1].isin"),
    ]


def test_json_every_field_of_a_holding_is_checked_and_bad_holdings_make_no_line():
    raw = _doc(_holding(isin=None, quantity="-1"), _holding(quantity="x"), _holding(quantity="2"))
    errors = rejected("json", raw, None).errors
    # holding 2 failed: it is not a line, so it cannot conflict with holding 3.
    assert [(e.line, e.field) for e in errors] == [
        (1, "$.holdings[0].isin"),
        (1, "$.holdings[0].quantity"),
        (2, "$.holdings[1].quantity"),
    ]


def test_json_as_of_with_a_t_but_not_a_date():
    (error,) = rejected("json", _doc(_holding(), as_of="2026-13-45T00:00:00Z"), None).errors
    assert error.message == (
        "file, field $.as_of: '2026-13-45T00:00:00Z' is not a date-time like 2026-11-24T21:00:00Z"
    )
