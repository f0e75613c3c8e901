"""The compiled snapshot splitter against the reference on random files in random chunks,
and known answers: records, nonces, totals and the trees built from them."""

from __future__ import annotations

import hashlib
import hmac
import io
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits.core.liabilities import (
    MAX_AMOUNT,
    lines_of,
    split_chunks,
    split_reference,
    split_snapshot,
)
from audits.core.merkle import build_tree, build_tree_from_records, decode_records
from tests.liabilities.split_helpers import (
    DECIMALS,
    SECRET,
    assert_same,
    native,
    needs_native,
    pieces,
    reference,
)

pytestmark = needs_native

fuzz = settings(
    max_examples=int(os.environ.get("LIABILITY_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER = b"account_id,asset,balance"

good_ids = st.one_of(
    st.sampled_from([b"u-1", b"u-2", b"u-3", "é".encode() * 64, b"a" * 128]),  # repeats, limits
    st.sampled_from([b"u-1", b"u-2", b"u-3", b"u-4"]),
    st.from_regex(rb"[a-z0-9@.\-]{1,12}", fullmatch=True),
    st.text(min_size=1, max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
bad_ids = st.sampled_from(
    [
        b"", b" ", b"\t", b"\x0b", b"\x1c", b" u", b"u ", "\u3000u".encode(), "u\u00a0".encode(),
        "\u2028a".encode(), "a\u205f".encode(), b"a\x00b", b"\x7f", "\u0085x".encode(),
        "x\u009f".encode(), "x\u00a1".encode(), b"\xff", b"\xc0\x80", b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80", b"\xe2\x82", b"a" * 129, "é".encode() * 65, b"u\rv",
    ]
)  # fmt: skip
known = st.sampled_from([b"AAPLx", b"MSFTx", b"WIDE"])
odd_assets = st.one_of(
    st.sampled_from(
        [b"", b"FOO", b"aaplx", b"AAPLx ", b"\xff\xfe", "é".encode(), b"a'b\\c", b"Z" * 100]
    ),
    st.binary(max_size=6).filter(lambda b: b"\n" not in b),
)
balances = st.one_of(
    st.sampled_from(
        [
            b"0",
            b"1",
            b"12.5",
            b"0.000001",
            b"1.0000001",
            b"-1",
            b"-",
            b"01",
            b"1.",
            b".5",
            b"",
            b"+1",
            b"1e5",
            b" 1",
            b"1 ",
            b"0.0",
            b"00.1",
            b"1..2",
            b"1.2.3",
            b"\xd9\xa1",
            str(MAX_AMOUNT).encode(),
            str(MAX_AMOUNT + 1).encode(),
            b"9" * 200,
            b"340282366920938463463374607431.768211455",
            b"340282366920938463463374607431.768211456",
            b"0." + b"0" * 40,
            b"0." + b"0" * 41,
            b"1." + b"0" * 40,
        ]
    ),
    st.from_regex(rb"[0-9]{1,25}(\.[0-9]{1,8})?", fullmatch=True),
)
plain = st.from_regex(rb"(0|[1-9][0-9]{0,12})(\.[0-9]{1,6})?", fullmatch=True)  # fmt: skip


@st.composite
def rows(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # a line of anything
        return draw(st.binary(max_size=40)).replace(b"\n", b"")
    if kind == 1:
        return draw(st.sampled_from([b"", b"\r", b'"u-1",AAPLx,1', b"a,b", b"a,b,c,d", b",,"]))
    account = draw(st.one_of(good_ids, bad_ids) if kind == 2 else good_ids)
    asset = draw(known if draw(st.integers(0, 3)) else odd_assets)  # mostly known
    balance = draw(plain if draw(st.integers(0, 2)) else balances)  # mostly good
    return b",".join((account, asset, balance))


@st.composite
def files(draw) -> bytes:
    head = draw(
        st.sampled_from(
            [HEADER] * 5
            + [b"\xef\xbb\xbf" + HEADER] * 3
            + [HEADER + b",x", b"", b"account_id;asset;balance"]
        )
    )
    lines = [head, *draw(st.lists(rows(), max_size=25))]
    if draw(st.booleans()):  # a line just over, or at, the limit
        lines.insert(draw(st.integers(0, len(lines))), b"x" * draw(st.integers(4094, 4097)))
    crlf = draw(st.booleans())  # mostly one style a file, sometimes a stray \r\r\n
    end = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r\r\n"] if crlf else [b"\n"] * 9 + [b"\r\n"])
    ends = draw(st.lists(end, min_size=len(lines), max_size=len(lines)))
    data = b"".join(line + end for line, end in zip(lines, ends, strict=False))
    return data if draw(st.booleans()) else data.rstrip(b"\n")


cuts = st.lists(st.integers(0, 1 << 20), max_size=10)


@fuzz
@given(data=files(), cuts=cuts)
def test_random_files_split_the_same_both_ways(data, cuts):
    assert_same(data, cuts)


@fuzz
@given(data=st.binary(max_size=300), cuts=cuts)
def test_random_bytes_split_the_same_both_ways(data, cuts):
    assert_same(data, cuts)
    assert_same(HEADER + b"\n" + data, cuts)


@fuzz
@given(data=files(), cuts=cuts)
def test_lines_of_any_chunking_are_the_files_lines(data, cuts):
    assert list(lines_of(pieces(data, cuts))) == list(io.BytesIO(data))


def test_every_byte_as_an_asset_code_is_quoted_alike():
    for b in range(256):
        assert_same(HEADER + b"\nu-1,x" + bytes([b]) + b"y,1\n")
    result = assert_same(HEADER + b"\nu-1,a'b\\\xc3\xa9\x00,1\nu-2," + b"Q" * 65 + b",1\n")
    assert [e.message for e in result.errors] == [
        "unknown asset 'a\\'b\\\\\\xc3\\xa9\\x00'",
        "unknown asset '" + "Q" * 64 + "'... (65 bytes)",
    ]


SMALL = (
    "\ufeffaccount_id,asset,balance\r\n"
    "u-1001,AAPLx,12.5\r\n"
    "u-1001,MSFTx,3\r\n"
    "é-ü,AAPLx,0.000001\r\n"
    "u-7,AAPLx,0\r\n"
    "u-8,MSFTx,340282366920938463463374607431768211452"
).encode()


def test_known_answers_records_nonces_and_totals():
    result, records = assert_same(SMALL, [1, 5, 30, 31]), reference(SMALL)[1]
    assert result.ok and result.rows == 5
    assert result.accounts == {"AAPLx": 3, "MSFTx": 2, "WIDE": 0}
    assert result.totals == {"AAPLx": 12_500_001, "MSFTx": MAX_AMOUNT, "WIDE": 0}

    def nonce(account: str) -> bytes:
        return hmac.new(SECRET, account.encode(), hashlib.sha256).digest()

    assert list(decode_records([records["AAPLx"]], 1)) == [
        ("u-1001", nonce("u-1001"), [12_500_000]),
        ("é-ü", nonce("é-ü"), [1]),
        ("u-7", nonce("u-7"), [0]),
    ]
    assert list(decode_records([records["MSFTx"]], 1)) == [
        ("u-1001", nonce("u-1001"), [3]),
        ("u-8", nonce("u-8"), [MAX_AMOUNT - 3]),
    ]
    assert records["WIDE"] == b""


def test_trees_built_from_the_sinks_have_the_roots_of_the_same_accounts(tmp_path):
    _, records = native(pieces(SMALL, [7, 40]))
    for code in ("AAPLx", "MSFTx"):
        accounts = list(decode_records([records[code]], 1))
        from_records = build_tree_from_records(
            pieces(records[code], [3, 50]), 1, SECRET, tmp_path / f"{code}-r.bin"
        )
        from_tuples = build_tree(accounts, 1, SECRET, tmp_path / f"{code}-t.bin", workers=1)
        assert from_records.root_hash == from_tuples.root_hash
        assert from_records.root_sums == from_tuples.root_sums
        assert from_records.real_count == len(accounts)


def test_a_row_taking_an_assets_total_past_two_to_the_128_is_refused():
    amounts = [MAX_AMOUNT - 5, 5, 1, 0, MAX_AMOUNT]
    data = HEADER + b"\n" + b"".join(b"u-%d,MSFTx,%d\n" % (i, a) for i, a in enumerate(amounts))
    result = assert_same(data, [9, 99])
    assert result.totals["MSFTx"] == MAX_AMOUNT and result.accounts["MSFTx"] == 3
    assert [e.as_dict() for e in result.errors] == [
        {"line": n, "field": "balance", "message": "takes the MSFTx total past 2**128 - 1 units"}
        for n in (4, 6)
    ]


def test_duplicates_name_the_first_line_per_asset():
    data = HEADER + b"\nu-1,AAPLx,1\nu-1,MSFTx,1\nu-2,AAPLx,1\nu-1,AAPLx,2\nu-1,MSFTx,2\n"
    result = assert_same(data)
    assert [e.as_dict() for e in result.errors] == [
        {"line": 5, "field": "account_id", "message": "duplicate of line 2 for AAPLx"},
        {"line": 6, "field": "account_id", "message": "duplicate of line 3 for MSFTx"},
    ]
    assert result.accounts == {"AAPLx": 2, "MSFTx": 1, "WIDE": 0}


def test_many_distinct_accounts_grow_the_duplicate_table():
    data = HEADER + b"\n" + b"".join(b"acct-%d,AAPLx,%d\n" % (i, i) for i in range(5000))
    data += b"acct-4321,AAPLx,1\nacct-17,AAPLx,1\n"
    result = assert_same(data, [4096, 65536])
    assert [e.message for e in result.errors] == [
        "duplicate of line 4323 for AAPLx",
        "duplicate of line 19 for AAPLx",
    ]


def test_records_stop_at_the_first_error_but_counting_goes_on():
    data = HEADER + b"\nu-1,AAPLx,1\nu-2,AAPLx,x\nu-3,AAPLx,2\n"
    result = assert_same(data)
    _, records = native([data])
    assert result.accounts["AAPLx"] == 2 and result.totals["AAPLx"] == 3_000_000
    assert [a for a, _, _ in decode_records([records["AAPLx"]], 1)] == ["u-1"]


def test_progress_reports_bytes_read():
    seen: list[int] = []
    native(pieces(SMALL, [10, 20]), progress=seen.append)
    assert seen == [10, 20, len(SMALL)]


def test_split_snapshot_takes_file_lines_or_any_pieces():
    expected = reference(SMALL)
    for source in (io.BytesIO(SMALL), pieces(SMALL, [3, 4, 77])):
        sinks = {c: io.BytesIO() for c in DECIMALS}
        assert split_snapshot(source, DECIMALS, SECRET, sinks) == expected[0]
        assert {c: s.getvalue() for c, s in sinks.items()} == expected[1]


def test_decimals_the_compiled_splitter_does_not_take_fall_back_to_the_reference():
    decimals = {"HUGE": 2000}
    data = HEADER + b"\nu-1,HUGE,0.5\nu-2,HUGE,0\n"
    sinks = {"HUGE": io.BytesIO()}
    result = split_chunks([data], decimals, SECRET, sinks)
    expected_sinks = {"HUGE": io.BytesIO()}
    assert result == split_reference(io.BytesIO(data), decimals, SECRET, expected_sinks)
    assert [e.message for e in result.errors] == ["too large"]
