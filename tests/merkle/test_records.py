"""The account record stream: encoding, decoding, and trees built from it by both builders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audits.core.merkle import (
    MerkleError,
    build_tree,
    build_tree_from_records,
    decode_records,
    encode_accounts,
    native,
)
from audits.core.merkle.records import encode_account
from tests.merkle.test_tree import LIMIT, SECRET, accounts_of, fast, nonce

# The compiled path where it is built (CI requires it), and always the pure-Python one.
BUILDERS = [None, 1] if native.available() else [1]


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """data split at the given offsets (records may be cut anywhere)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_a_record_is_exactly_the_bytes_the_spec_lists():
    rec = encode_account(("é", b"\x01" * 32, [5, 2**127]), 2)
    assert rec == (
        b"\x00\x00\x00\x02" + "é".encode() + b"\x01" * 32
        + (5).to_bytes(16, "big") + (2**127).to_bytes(16, "big")
    )  # fmt: skip


account_ids = st.one_of(
    st.from_regex(r"[a-z0-9@.\-]{0,20}", fullmatch=True),
    st.text(max_size=30),
    st.text(alphabet="é", min_size=300, max_size=400),  # > 512 UTF-8 bytes: C hashes piecewise
)


@fast
@given(
    k=st.integers(1, 3),
    ids=st.lists(account_ids, min_size=1, max_size=30, unique=True),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    amounts=st.lists(st.integers(0, LIMIT // 64), min_size=3, max_size=3),
)
def test_records_build_the_same_file_as_tuples(tmp_path, k, ids, cuts, amounts):
    accounts = [(aid, nonce(i), amounts[:k]) for i, aid in enumerate(ids)]
    stream = pieces(b"".join(encode_accounts(accounts, k)), cuts)
    assert list(decode_records(stream, k)) == [(a, n, list(b)) for a, n, b in accounts]
    reference = tmp_path / "tuples.bin"
    build_tree(accounts, k, SECRET, reference, workers=1, snapshot="s")
    for workers in BUILDERS:
        out = tmp_path / f"records-{workers}.bin"
        info = build_tree_from_records(stream, k, SECRET, out, workers=workers, snapshot="s")
        assert out.read_bytes() == reference.read_bytes()
        assert info.real_count == len(accounts)


@pytest.mark.skipif(not native.available(), reason="needs the compiled builder")
def test_same_file_on_the_threaded_size(tmp_path):
    # 20,000 accounts: C hashes accounts and pads, sorts and gathers on two threads.
    accounts = accounts_of([[i, 5 * i] for i in range(20_000)])
    stream = list(encode_accounts(accounts, 2, chunk_bytes=100_000))
    a, b = tmp_path / "c.bin", tmp_path / "py.bin"
    build_tree_from_records(stream, 2, SECRET, a)
    build_tree(accounts, 2, SECRET, b, workers=1)
    assert a.read_bytes() == b.read_bytes()


def test_chunks_aim_at_the_requested_size():
    accounts = accounts_of([[i] for i in range(1000)])
    chunks = list(encode_accounts(accounts, 1, chunk_bytes=4096))
    assert len(chunks) > 10
    assert all(4096 <= len(c) < 4096 + 100 for c in chunks[:-1])


def errors_of(tmp_path, chunks, k) -> set[tuple[str | None, str, str]]:
    """(account, field, message) of the error each builder raises; one element if they agree."""
    out = set()
    for workers in BUILDERS:
        with pytest.raises(MerkleError) as info:
            build_tree_from_records(chunks, k, SECRET, tmp_path / "t.bin", workers=workers)
        out.add((info.value.account, info.value.field, str(info.value)))
    assert not (tmp_path / "t.bin").exists()
    return out


def good(i: int, k: int = 1) -> bytes:
    return encode_account((f"user-{i}", nonce(i), [i] * k), k)


def test_encoding_names_the_bad_account():
    with pytest.raises(MerkleError) as info:
        list(encode_accounts([("u1", nonce(1), [1]), ("u2", nonce(2), [-3])], 1))
    assert (info.value.account, info.value.field) == ("u2", "balances[0]")
    assert "negative" in str(info.value)


def test_a_truncated_stream_is_an_error(tmp_path):
    data = good(0) + good(1)
    (err,) = errors_of(tmp_path, [data[:-1]], 1)
    assert err == (None, "records", "records: stream ends inside a record (record 1)")


def test_a_stream_cut_inside_the_length_is_an_error(tmp_path):
    (err,) = errors_of(tmp_path, [good(0) + b"\x00\x00"], 1)
    assert err[1:] == ("records", "records: stream ends inside a record (record 1)")


def test_an_id_that_is_not_utf8_is_named(tmp_path):
    bad = b"\x00\x00\x00\x02\xed\xa0" + nonce(9) + bytes(16)  # an encoded surrogate
    (err,) = errors_of(tmp_path, [good(0), bad, good(1)], 1)
    assert err == (
        repr(b"\xed\xa0"),
        "id",
        "account \"b'\\\\xed\\\\xa0'\": id: not valid UTF-8 (record 1)",
    )


def test_a_duplicate_across_chunks_names_the_first_repeat(tmp_path):
    first = encode_account(("bob", nonce(1), [1]), 1)
    again = encode_account(("bob", nonce(2), [2]), 1)
    (err,) = errors_of(tmp_path, [good(0) + first[:7], first[7:] + good(2), again], 1)
    assert err == ("bob", "id", "account 'bob': id: duplicate account id")


def test_both_builders_report_the_first_problem_in_stream_order(tmp_path):
    stream = [good(1), good(2), good(1), b"\x00\x00\x00\x01\xff" + nonce(3) + bytes(16)]
    (err,) = errors_of(tmp_path, stream, 1)
    assert err == ("user-1", "id", "account 'user-1': id: duplicate account id")


def test_an_empty_stream_is_an_empty_snapshot(tmp_path):
    (err,) = errors_of(tmp_path, [b"", b""], 1)
    assert err == (None, "accounts", "accounts: empty snapshot: no accounts, so no tree")


@pytest.mark.skipif(not native.available(), reason="needs the compiled builder")
@pytest.mark.parametrize(
    "accounts",
    [
        # a repeat after an account only Python takes (bytearray nonce): C still sees both ids
        [("a", nonce(0), [1]), ("a", bytearray(nonce(1)), [2])],
        [("a", bytearray(nonce(0)), [1]), ("b", nonce(1), [2]), ("a", nonce(2), [2])],
        # the first repeat in input order wins, whatever the fingerprints' order
        [(f"u{i}", nonce(i), [i]) for i in range(50)]
        + [("u7", nonce(99), [0]), ("u3", nonce(98), [0])],
        # a repeat before a bad account is the error reported
        [("a", nonce(0), [1]), ("a", nonce(1), [1]), ("b", nonce(2), [-1])],
    ],
    ids=["after-python-path", "before-python-path", "first-repeat", "before-bad-account"],
)
def test_duplicates_in_the_compiled_tuple_path_match_python(tmp_path, accounts):
    found = []
    for workers in (None, 1):
        with pytest.raises(MerkleError) as info:
            build_tree(accounts, 1, SECRET, tmp_path / "t.bin", workers=workers, chunk_size=4)
        found.append(str(info.value))
    assert found[0] == found[1]
    assert "duplicate account id" in found[0]


def test_a_corrupt_length_waits_for_its_bytes_then_reports_truncation(tmp_path):
    # A length of 4 GiB - 1 makes the rest of the stream part of one unfinished record.
    corrupt = b"\xff\xff\xff\xff" + b"x" * 60
    stream = [good(0), corrupt, *[b"y" * 4096] * 50]
    (err,) = errors_of(tmp_path, stream, 1)
    assert err == (None, "records", "records: stream ends inside a record (record 1)")


def test_chunks_may_be_any_bytes_like(tmp_path):
    data = good(0) + good(1) + good(2)
    stream = [bytearray(data[:50]), memoryview(data)[50:120], data[120:]]
    out, ref = tmp_path / "a.bin", tmp_path / "b.bin"
    for workers in BUILDERS:
        build_tree_from_records(stream, 1, SECRET, out, workers=workers)
        build_tree([(f"user-{i}", nonce(i), [i]) for i in range(3)], 1, SECRET, ref, workers=1)
        assert out.read_bytes() == ref.read_bytes()
