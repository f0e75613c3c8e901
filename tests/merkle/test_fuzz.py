"""Fuzzing both builders against each other: random and mutated account record streams and
random account tuples; each build must give the same file or the same error in both.

Bounded by MERKLE_FUZZ_EXAMPLES (a few dozen in the ordinary suite; scripts/merkle-asan.sh
raises it to fuzz the C code built with AddressSanitizer and UBSan for about a minute).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits.core.merkle import MerkleError, build_tree, build_tree_from_records, native
from tests.merkle.test_input_edges import KINDS, _as_kind, _itemsize
from tests.merkle.test_tree import LIMIT, SECRET, nonce

pytestmark = pytest.mark.skipif(not native.available(), reason="needs the compiled builder")

fuzz = settings(
    max_examples=int(os.environ.get("MERKLE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ids = st.one_of(
    st.sampled_from(["", "a", "b", "é", "a" * 600]),  # repeats, empty, long (hashed piecewise)
    st.text(max_size=12),
)
amounts = st.one_of(st.integers(0, 3), st.integers(0, LIMIT - 1), st.just(LIMIT // 2))


def outcome(build, *args, **kw):
    """('ok', file bytes) or ('error', account, field, message) of one build."""
    path = args[3]
    try:
        build(*args, **kw)
    except MerkleError as exc:
        assert not path.exists()
        return ("error", exc.account, exc.field, str(exc))
    data = path.read_bytes()
    path.unlink()
    return ("ok", data)


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, value in edits:
        at = pos % (len(buf) + 1)
        if op == "flip" and buf:
            buf[at % len(buf)] ^= 1 << (value % 8)
        elif op == "set":  # a byte to any value, e.g. in a length prefix
            buf[at : at + 1] = bytes([value])
        elif op == "insert":
            buf[at:at] = bytes([value])
        elif op == "delete":
            del buf[at : at + 1 + value % 8]
        elif op == "length":  # a 4-byte length anywhere, small or huge
            buf[at : at + 4] = (value * 0x01010101 if value > 200 else value).to_bytes(4, "big")
        elif op == "truncate":
            del buf[at:]
    return bytes(buf)


@fuzz
@given(
    k=st.integers(1, 3),
    accounts=st.lists(st.tuples(ids, st.lists(amounts, min_size=3, max_size=3)), max_size=20),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "set", "insert", "delete", "length", "truncate"]),
            st.integers(0, 10**6),
            st.integers(0, 255),
        ),
        max_size=4,
    ),
    cuts=st.lists(st.integers(0, 10**6), max_size=6),
    kinds=st.lists(st.sampled_from(KINDS), min_size=7, max_size=7),
    key_bits=st.sampled_from([64, 64, 3]),
)
def test_mutated_record_streams(tmp_path, monkeypatch, k, accounts, edits, cuts, kinds, key_bits):
    monkeypatch.setattr(native, "KEY_BITS", key_bits)  # 3: fingerprints and sort keys collide
    data = b"".join(
        len(idb := aid.encode()).to_bytes(4, "big")
        + idb
        + nonce(i)
        + b"".join(b.to_bytes(16, "big") for b in bals[:k])
        for i, (aid, bals) in enumerate(accounts)
    )
    data = mutate(data, edits)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = []
    for n, (a, b) in enumerate(zip([0, *points], [*points, len(data)], strict=True)):
        piece, kind = data[a:b], kinds[n]
        chunks.append(_as_kind(piece, kind if len(piece) % _itemsize(kind) == 0 else "bytes"))
    results = [
        outcome(build_tree_from_records, chunks, k, SECRET, tmp_path / "t.bin", workers=w)
        for w in (None, 1)
    ]
    assert results[0] == results[1]


odd_values = st.sampled_from([None, 1.5, -1, LIMIT, "x", b"x", [1], (), True])


@fuzz
@given(
    k=st.integers(1, 2),
    rows=st.lists(
        st.one_of(
            st.tuples(ids, st.integers(0, 40), st.lists(amounts, min_size=2, max_size=2)).map(
                lambda r: (r[0], nonce(r[1]), r[2])
            ),
            st.tuples(ids, st.sampled_from([b"", bytes(31), bytearray(32)]), st.just([1, 1])),
            st.tuples(odd_values, st.just(bytes(32)), st.just([1, 1])),
            st.tuples(ids, st.just(bytes(32)), st.lists(odd_values, max_size=3)),
            odd_values,
        ),
        max_size=15,
    ),
    chunk=st.sampled_from([2, 5, 1000]),
    key_bits=st.sampled_from([64, 2]),
)
def test_random_account_tuples(tmp_path, monkeypatch, k, rows, chunk, key_bits):
    monkeypatch.setattr(native, "KEY_BITS", key_bits)
    accounts = [
        (r[0], r[1], r[2][:k]) if isinstance(r, tuple) and r and isinstance(r[-1], list) else r
        for r in rows
    ]
    results = {
        outcome(build_tree, accounts, k, SECRET, tmp_path / "t.bin", workers=w, chunk_size=chunk)
        for w in (None, 1)
    }
    assert len(results) == 1, results
