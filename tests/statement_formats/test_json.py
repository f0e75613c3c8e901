"""JSON statement parsing, schema mapping and validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from audits.core.statement_formats import (
    PENDING_DELIVERY,
    PENDING_RECEIPT,
    SETTLED,
    StatementLine,
    StatementRejected,
    parse_statement,
    schema,
)
from audits.core.statement_formats.json_format import _plainly_valid

from .helpers import APPLE, APPLE_BAD_CHECK_DIGIT, MICROSOFT, sample

AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def holding(**overrides):
    base = {"isin": APPLE, "quantity": "10", "account": "A", "balance_type": "settled"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def doc(*holdings, as_of="2026-11-24T21:00:00Z") -> bytes:
    return json.dumps({"as_of": as_of, "holdings": list(holdings)}).encode()


def rejected(raw: bytes, as_of: datetime | None = None) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        parse_statement("json", raw, as_of)
    return info.value


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_sample_file_parses_to_expected_lines():
    result = parse_statement("json", sample("statement.json"))
    assert result.format == "json"
    assert result.as_of == AS_OF
    assert result.lines == (
        StatementLine(1, APPLE, Decimal("125000"), "PORT-7781-0042", SETTLED),
        StatementLine(2, MICROSOFT, Decimal("18250.5"), "PORT-7781-0042", SETTLED),
        StatementLine(3, MICROSOFT, Decimal("1200"), "PORT-7781-0042", PENDING_RECEIPT),
        StatementLine(4, APPLE, Decimal("5000"), "PORT-7781-0042", PENDING_DELIVERY),
    )
    # The sample file validates against the published schema as is.
    Draft202012Validator(schema()).validate(json.loads(sample("statement.json")))


def test_long_quantities_keep_every_digit():
    q = "12345678901234567890.123456789012345678"
    (line,) = parse_statement("json", doc(holding(quantity=q))).lines
    assert line.quantity == Decimal(q) and str(line.quantity) == q


def test_bom_is_accepted():
    assert parse_statement("json", b"\xef\xbb\xbf" + doc(holding())).lines


def test_as_of_offset_is_kept():
    result = parse_statement("json", doc(holding(), as_of="2026-11-24T22:00:00+01:00"))
    assert result.as_of == AS_OF
    assert result.as_of.utcoffset() == timedelta(hours=1)


def test_upload_as_of_must_agree_with_file():
    assert parse_statement("json", doc(holding()), AS_OF).as_of == AS_OF
    other = datetime(2026, 11, 24, 20, 0, tzinfo=timezone(timedelta(hours=-1)))
    assert parse_statement("json", doc(holding()), other).as_of == AS_OF  # same instant
    (error,) = rejected(doc(holding()), AS_OF + timedelta(hours=1)).errors
    assert error.field == "as_of" and "must agree" in error.message


@pytest.mark.parametrize(
    ("as_of", "fragment"),
    [("2026-11-24", "not a date-time"), ("2026-11-24T21:00:00", "no UTC offset"), ("soon", "not")],
)
def test_bad_as_of(as_of, fragment):
    (error,) = rejected(doc(holding(), as_of=as_of)).errors
    assert error.line is None and error.field == "$.as_of" and fragment in error.message


@pytest.mark.parametrize(
    ("h", "field", "fragment"),
    [
        (holding(quantity=12.5), "quantity", "not a JSON number"),
        (holding(quantity=12), "quantity", "not a JSON number"),
        (holding(quantity="-3"), "quantity", "negative"),
        (holding(quantity="NaN"), "quantity", "not a plain decimal"),
        (holding(quantity="Infinity"), "quantity", "not a plain decimal"),
        (holding(isin=APPLE_BAD_CHECK_DIGIT), "isin", "wrong check digit"),
        (holding(isin="US03783310"), "isin", "wrong length"),
        (holding(isin=None), "isin", "isin is missing"),
        (holding(account=""), "account", "should be non-empty"),
        (holding(balance_type="free"), "balance_type", "'free' is unknown"),
        (holding(balance_type=None), "balance_type", "balance_type is missing"),
        (holding(price="1"), "price", "unknown field 'price'"),
    ],
)
def test_holding_errors_name_holding_and_json_path(h, field, fragment):
    (error,) = rejected(doc(holding(isin=MICROSOFT), h)).errors
    assert error.line == 2
    assert error.field == f"$.holdings[1].{field}"
    assert error.message.startswith(f"holding 2, field $.holdings[1].{field}: ")
    assert fragment in error.message


def test_every_problem_in_every_holding_is_reported_once():
    raw = doc(
        {"quantity": "1"},
        holding(isin=APPLE_BAD_CHECK_DIGIT, quantity="-1", balance_type="x"),
        5,
    )
    errors = rejected(raw).errors
    assert sorted((e.line, e.field) for e in errors) == [
        (1, "$.holdings[0].account"),
        (1, "$.holdings[0].balance_type"),
        (1, "$.holdings[0].isin"),
        (2, "$.holdings[1].balance_type"),
        (2, "$.holdings[1].isin"),
        (2, "$.holdings[1].quantity"),
        (3, "$.holdings[2]"),
    ]


def test_duplicates_name_both_holdings():
    raw = doc(holding(quantity="1"), holding(quantity="2"), holding(quantity="1", account="B"))
    (error,) = rejected(raw).errors
    assert error.line == 2 and "conflicts with holding 1" in error.message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty statement"),
        (doc(), "empty statement"),
        (b"[]", "is not of type 'object'"),
        (b'{"holdings": []', "not valid JSON at text line 1"),
        (b'{"as_of": "2026-11-24T21:00:00Z", "holdings": [], "holdings": []}', "appears twice"),
        (b'{"as_of": NaN, "holdings": []}', "NaN is not valid JSON"),
        ('{"as_of": "\u00e9"}'.encode("latin-1"), "not valid UTF-8"),
        (b'{"holdings": [{"isin": "US0378331005"}]}', "as_of is missing"),
    ],
)
def test_file_level_errors(raw, fragment):
    errors = rejected(raw).errors
    assert any(fragment in e.message for e in errors), errors


def test_duplicate_key_inside_a_holding_is_rejected():
    raw = (
        b'{"as_of": "2026-11-24T21:00:00Z", "holdings": [{"isin": "US0378331005", '
        b'"quantity": "1", "quantity": "1000", "account": "A", "balance_type": "settled"}]}'
    )
    (error,) = rejected(raw).errors
    assert "'quantity' appears twice" in error.message


# The fast path must never accept a holding the schema would reject.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=6,
)
holding_like = (
    st.dictionaries(
        st.sampled_from(["isin", "quantity", "account", "balance_type", "extra"]),
        json_values | st.sampled_from(["settled", "pending_receipt", "pending_delivery", ""]),
    )
    | json_values
)


@settings(max_examples=300, deadline=None)
@given(h=holding_like)
def test_fast_path_implies_schema_valid(h):
    validator = Draft202012Validator(schema()["$defs"]["holding"])
    if _plainly_valid(h):
        assert validator.is_valid(h)
