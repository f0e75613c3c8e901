"""Hostile snapshot files: both splitters give the same, bounded answer."""

from __future__ import annotations

import pytest

from audits.core import liabilities
from audits.core.liabilities import MAX_ERRORS, MAX_LINE_BYTES, SECRET_BYTES, split_chunks
from tests.liabilities.split_helpers import SECRET, assert_same, needs_native

pytestmark = needs_native

HEADER = b"account_id,asset,balance\n"
NO_ROWS = [(2, "line", "no rows: a snapshot with no accounts is stated, not uploaded")]


def errors(result) -> list[tuple[int, str, str]]:
    return [(e.line, e.field, e.message) for e in result.errors]


@pytest.mark.parametrize("chunk", [1 << 20, 1 << 16, 10 << 20])
def test_a_10_mb_line_is_one_error_and_never_held(chunk):
    data = HEADER + b"u-1,AAPLx,1\n" + b"x" * (10 << 20) + b"\nu-2,AAPLx,2\n"
    result = assert_same(data, list(range(chunk, len(data), chunk)))
    assert errors(result) == [(3, "line", f"longer than {MAX_LINE_BYTES} bytes")]
    assert result.rows == 2 and result.accounts["AAPLx"] == 2  # over-long lines are not rows


def test_line_length_limit_counts_the_line_end_and_not_the_bom():
    row = b"u-1,AAPLx,"
    fits = row + b"1" * (MAX_LINE_BYTES - len(row) - 1) + b"\n"
    over = row + b"1" * (MAX_LINE_BYTES - len(row)) + b"\n"
    assert len(fits) == MAX_LINE_BYTES
    result = assert_same(b"\xef\xbb\xbf" + HEADER + fits + over, [1, 2, 30, 4100])
    assert errors(result) == [
        (2, "balance", "too large"),
        (3, "line", f"longer than {MAX_LINE_BYTES} bytes"),
    ]
    long_header = b"\xef\xbb\xbf" + b"h" * MAX_LINE_BYTES
    assert errors(assert_same(long_header, [2])) == [
        (1, "header", "expected account_id,asset,balance")
    ]
    assert errors(assert_same(long_header + b"\n", [2])) == [
        (1, "line", f"longer than {MAX_LINE_BYTES} bytes")
    ]


def test_nul_bytes_anywhere():
    data = HEADER + b"u\x00,AAPLx,1\nu-2,AAPLx\x00,1\nu-3,AAPLx,1\x00\n\x00\n"
    result = assert_same(data, [30, 31])
    assert errors(result) == [
        (2, "account_id", "contains a control character"),
        (3, "asset", "unknown asset 'AAPLx\\x00'"),
        (4, "balance", "not a plain decimal number (digits, optionally one '.')"),
        (5, "line", "expected 3 fields, found 1"),
    ]


def test_invalid_utf8_and_controls_in_account_ids():
    ids = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"a\xc2\x85", b"\xc2\xa0a", b"\xe3\x80\x80"]
    data = HEADER + b"".join(i + b",AAPLx,1\n" for i in ids)
    assert errors(assert_same(data)) == [
        (2, "account_id", "not valid UTF-8"),
        (3, "account_id", "not valid UTF-8"),
        (4, "account_id", "not valid UTF-8"),
        (5, "account_id", "contains a control character"),
        (6, "account_id", "has spaces around it"),
        (7, "account_id", "has spaces around it"),
    ]


def test_1500_bad_rows_keep_the_first_1000_errors_and_count_all():
    data = HEADER + b"".join(b"u-%d,NOPE,1\n" % i for i in range(1500))
    result = assert_same(data, [100_000])
    assert len(result.errors) == MAX_ERRORS and result.error_count == 1500
    assert errors(result)[-1] == (MAX_ERRORS + 1, "asset", "unknown asset 'NOPE'")


def test_huge_balances():
    data = HEADER + b"u-1,AAPLx," + b"1" * 4000 + b"\nu-2,AAPLx,0." + b"0" * 4000 + b"\n"
    data += b"u-3,MSFTx,0" + b"0" * 4000 + b"\nu-4,WIDE,0.0000001\nu-5,WIDE,1\nu-6,WIDE,0\n"
    assert errors(assert_same(data, [5000])) == [
        (2, "balance", "too large"),
        (3, "balance", "more than 6 decimal places"),
        (4, "balance", "not a plain decimal number (digits, optionally one '.')"),
        (6, "balance", "too large"),  # 10**40 smallest units
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [(1, "header", "empty file; expected account_id,asset,balance")]),
        (HEADER, NO_ROWS),
        (HEADER[:-1], NO_ROWS),
        (b"\xef\xbb\xbf" + HEADER[:-1] + b"\r\n", NO_ROWS),
        (b"\xef\xbb\xbf", [(1, "header", "expected account_id,asset,balance")]),
        (b"\n", [(1, "header", "expected account_id,asset,balance")]),
        (HEADER + b"\n", [(2, "line", "empty line")]),
        (b"u-1,AAPLx,1\n", [(1, "header", "expected account_id,asset,balance")]),
    ],
)  # fmt: skip
def test_header_only_and_empty_files(data, expected):
    for cut in range(len(data) + 1):
        assert errors(assert_same(data, [cut])) == expected


def test_the_splitter_is_used_once_and_checks_its_arguments():
    splitter = liabilities._c.Splitter(["A"], [0], SECRET, MAX_LINE_BYTES, 128, MAX_ERRORS)
    assert splitter.feed(HEADER + b"u,A,1\n")[0].startswith(b"\x00\x00\x00\x01u")
    assert splitter.finish()[1:] == (1, [1], [1], [], 0)
    with pytest.raises(RuntimeError):
        splitter.feed(b"u,A,1\n")
    with pytest.raises(RuntimeError):
        splitter.finish()
    with pytest.raises(RuntimeError, match="not initialized"):
        liabilities._c.Splitter.__new__(liabilities._c.Splitter).feed(b"x")
    for bad in (([], [0], SECRET), (["A"], [-1], SECRET), (["A"], [0], b"short")):
        with pytest.raises(ValueError):
            liabilities._c.Splitter(*bad, MAX_LINE_BYTES, 128, MAX_ERRORS)
    with pytest.raises(ValueError, match="too short"):
        split_chunks([HEADER], {"A": 0}, b"\x00" * (SECRET_BYTES // 2 - 1), {})
