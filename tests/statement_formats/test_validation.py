"""Shared field checks, the dispatcher and the error types."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import isin as stdnum_isin

from audits.core.statement_formats import (
    BALANCE_TYPE_CHOICES,
    BALANCE_TYPES,
    FORMATS,
    RESERVE_BALANCE_TYPES,
    SETTLED,
    LineError,
    StatementRejected,
    decimal_places,
    parse_statement,
)
from audits.core.statement_formats.validation import _check_isin, parse_quantity


@pytest.mark.parametrize(
    ("q", "places"),
    [
        ("10.500", 1),
        ("10", 0),
        ("100", 0),
        ("1E+2", 0),
        ("0.000", 0),
        ("0", 0),
        ("0.001", 3),
        ("1.10", 1),
        ("12345678901234567890.123456789012345670", 17),
        ("1E-30", 30),
    ],
)
def test_decimal_places_ignores_trailing_zeros(q, places):
    assert decimal_places(Decimal(q)) == places


@pytest.mark.parametrize("q", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_decimal_places_rejects_non_finite(q):
    with pytest.raises(ValueError, match="not a finite number"):
        decimal_places(Decimal(q))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_places_matches_definition(q):
    places = decimal_places(q)
    with localcontext(Context(prec=10_000)):  # exact arithmetic for these digit counts
        # Shifting by `places` gives an integer; shifting by one place fewer does not.
        assert q.scaleb(places) == q.scaleb(places).to_integral_value()
        if places:
            assert q.scaleb(places - 1) != q.scaleb(places - 1).to_integral_value()


@settings(max_examples=500)
@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -", max_size=14)
    | st.builds(
        lambda c, b: c + b,
        st.sampled_from(["US", "GB", "XS", "ZZ", "DE"]),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=10, max_size=10),
    )
)
def test_isin_check_agrees_with_stdnum(value):
    isin, problem = _check_isin(value)
    assert (problem is None) == stdnum_isin.is_valid(value)
    if problem is None:
        assert isin == stdnum_isin.validate(value)


@given(st.decimals(min_value=0, max_value=Decimal(10) ** 20 - 1, places=6, allow_nan=False))
def test_parse_quantity_reads_plain_decimals_exactly(q):
    assert parse_quantity(f"{q:f}") == (q, None)


@given(st.text(max_size=20))
def test_parse_quantity_never_raises_and_never_returns_non_finite(text):
    quantity, problem = parse_quantity(text)
    assert (quantity is None) != (problem is None)
    if quantity is not None:
        assert quantity.is_finite() and quantity >= 0


def test_dispatcher_rejects_unknown_format():
    assert FORMATS == ("csv", "json", "semt002")
    with pytest.raises(ValueError, match="unknown statement format 'xlsx'"):
        parse_statement("xlsx", b"")


def test_balance_type_constants_are_consistent():
    assert tuple(value for value, _label in BALANCE_TYPE_CHOICES) == BALANCE_TYPES
    assert {SETTLED} == RESERVE_BALANCE_TYPES


def test_rejection_serialises_for_an_api_response():
    exc = StatementRejected([LineError(3, "isin", "line 3, field isin: bad")], omitted=2)
    assert exc.as_dicts() == [
        {"line": 3, "field": "isin", "message": "line 3, field isin: bad"},
        {"line": None, "field": None, "message": "... and 2 more errors"},
    ]
    assert str(exc) == "line 3, field isin: bad\n... and 2 more errors"
