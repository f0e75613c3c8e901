"""No input makes a parser raise anything but StatementRejected (issue #9 point 5).

A parser that raises anything else (RecursionError on deep nesting, say) turns an upload into an
HTTP 500 and leaves the stored statement stuck: a poison record.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits.core.statement_formats import (
    FORMATS,
    ParsedStatement,
    StatementRejected,
    parse_statement,
)
from audits.core.statement_formats.json_format import MAX_JSON_DEPTH, _nested_deeper_than
from audits.core.statement_formats.semt002 import MAX_XML_DEPTH

from .helpers import APPLE, bal_for_acct, sample, semt002
from .iso20022_messages import balance, render, report, sub_account

DOC_OPEN = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11">\n'


def rejected(fmt: str, raw: bytes) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        parse_statement(fmt, raw)
    return info.value


def nested_json(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda n: nested_json(n, b"[", b"]"), id="arrays"),
        pytest.param(lambda n: nested_json(n, b'{"a":', b"}")[:-1] + b"1" + b"}", id="objects"),
        pytest.param(
            lambda n: (
                b'{"as_of": "2026-11-24T21:00:00Z", "holdings": '
                + nested_json(n, b"[", b"]")
                + b"}"
            ),
            id="holdings",
        ),
        pytest.param(
            lambda n: (
                b'{"as_of": "2026-11-24T21:00:00Z", "holdings": [{"isin": '
                + nested_json(n, b"[", b"]")
                + b"}]}"
            ),
            id="inside-a-holding",
        ),
    ],
)
def test_deep_json_is_a_readable_rejection(build, depth):
    raw = build(depth)
    started = time.monotonic()
    (error,) = rejected("json", raw).errors
    assert time.monotonic() - started < 5
    assert f"nested more than {MAX_JSON_DEPTH} levels" in error.message


def test_json_just_past_the_limit_is_refused():
    deep = nested_json(MAX_JSON_DEPTH - 2, b"[", b"]")
    raw = b'{"as_of": "2026-11-24T21:00:00Z", "holdings": [{"isin": "x"}, {"isin": ' + deep + b"}]}"
    (error,) = rejected("json", raw).errors
    assert error.line is None and "nested more than" in error.message


def test_brackets_in_strings_are_not_nesting():
    text = '"]]]]]]]]]]]]]]]]]]]]]]]]]][[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\\"'
    raw = json.dumps({"as_of": "2026-11-24T21:00:00Z", "holdings": [{"isin": text}]}).encode()
    errors = rejected("json", raw).errors
    assert not any("nested" in e.message for e in errors)


def test_escaped_quotes_cost_linear_time():
    # An unterminated string full of escaped quotes made a whole-string regex quadratic.
    raw = b'{"as_of": "' + b'\\"' * 300_000
    started = time.monotonic()
    rejected("json", raw)
    assert time.monotonic() - started < 2


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\a'), children, max_size=3)
    ),
    max_leaves=40,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(0, 8), ascii_only=st.booleans())
def test_nesting_prescan_is_exact_on_valid_json(value, limit, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert _nested_deeper_than(text, limit) == (depth(value) > limit)


def test_json_at_the_limit_is_an_ordinary_schema_error():
    # Holding at depth 3, its value nested up to the limit: read, and refused by the schema.
    inner = nested_json(MAX_JSON_DEPTH - 3, b"[", b"]")
    raw = b'{"as_of": "2026-11-24T21:00:00Z", "holdings": [{"isin": ' + inner + b"}]}"
    errors = rejected("json", raw).errors
    assert not any("nested" in e.message for e in errors)


@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize(
    ("build", "line"),
    [
        pytest.param(lambda n: b"<a>" * n + b"</a>" * n, 1, id="bare"),
        pytest.param(
            lambda n: (
                DOC_OPEN
                + b"<SctiesBalCtdyRpt>\n"
                + b"<x>" * n
                + b"</x>" * n
                # the error names the line where the limit was crossed
                + b"</SctiesBalCtdyRpt></Document>"
            ),
            3,
            id="in-document",
        ),
        pytest.param(
            lambda n: semt002(
                bal_for_acct(APPLE, "1").replace(
                    "<Unit>1</Unit>", "\n" + "<Qty>" * n + "</Qty>" * n + "<Unit>1</Unit>"
                )
            ),
            10,
            id="inside-a-quantity",
        ),
    ],
)
def test_deep_xml_is_a_readable_rejection(build, line, depth):
    raw = build(depth)
    started = time.monotonic()
    (error,) = rejected("semt002", raw).errors
    assert time.monotonic() - started < 5
    assert f"nested more than {MAX_XML_DEPTH} levels" in error.message
    assert error.line == line and error.message.startswith(f"line {line}: ")


def test_xml_at_the_depth_limit_is_read_normally():
    # Depth 3 at SctiesBalCtdyRpt's children; pad an ignored element up to the limit exactly.
    filler = "<SplmtryData>" + "<x>" * (MAX_XML_DEPTH - 4) + "</x>" * (MAX_XML_DEPTH - 4)
    raw = semt002(bal_for_acct(APPLE, "1"), filler + "</SplmtryData>")
    assert len(parse_statement("semt002", raw).lines) == 1


# --- any input: a ParsedStatement or a StatementRejected, nothing else ------------------------

SEEDS: dict[str, list[bytes]] = {
    "csv": [sample("statement.csv")],
    "json": [sample("statement.json")],
    "semt002": [
        sample("semt002_v11_custody_statement.xml"),
        sample("semt002_v10_with_apphdr.xml"),
        render(
            report(
                balance(APPLE, "1250000", ("PEND", "40000"), ("PENR", "75000")),
                sub_accounts=(sub_account("CLIENT-A", balance(APPLE, "1250000")),),
                page="00002",
                last=False,
            )
        ),
    ],
}
# Fragments that mean something to one of the parsers, for insertions.
TOKENS = [
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"<!DOCTYPE x>",
    b"<![CDATA[",
    b'"',
    b"'",
    b",",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"[",
    b"]",
    b"{",
    b"}",
    b":",
    b"-",
    b".",
    b"0",
    b"9" * 30,
    b"1e999",
    b"NaN",
    b"null",
    b"true",
    b"SHOR",
    b"PEND",
    b"PENR",
    b"DELT",
    b"TRAD",
    b"<Qty>",
    b"<Unit>",
    b"<BalForAcct>",
    b"<SubAcctDtls>",
    b"<Pgntn>",
    b"\xf0\x9f\x92\xa5",
    b"\xed\xa0\x80",
]
AS_OF = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def outcome(fmt: str, raw: bytes, as_of: datetime | None) -> None:
    try:
        result = parse_statement(fmt, raw, as_of)
    except StatementRejected as exc:
        assert exc.errors and all(e.message for e in exc.errors)
        json.dumps(exc.as_dicts())  # serialisable for the API response
    else:
        assert isinstance(result, ParsedStatement) and result.format == fmt


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS), raw=st.binary(max_size=3000), as_of=AS_OF)
def test_arbitrary_bytes(fmt, raw, as_of):
    outcome(fmt, raw, as_of)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(FORMATS))
    data = bytearray(draw(st.sampled_from(SEEDS[fmt])))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "repeat"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
        else:
            end = min(len(data), at + draw(st.integers(1, 200)))
            data[at:at] = data[at:end] * draw(st.integers(1, 5))
    return fmt, bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), as_of=AS_OF)
def test_mutated_valid_files(case, as_of):
    fmt, raw = case
    outcome(fmt, raw, as_of)


@settings(max_examples=200, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    parts=st.lists(
        st.sampled_from([*'<>/="[]{},:\n &;ab01-.', "Qty", "Unit", "BalForAcct", "Document"]),
        max_size=200,
    ),
)
def test_structured_garbage(fmt, parts):
    outcome(fmt, "".join(parts).encode(), None)
