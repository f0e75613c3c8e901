"""The C accelerator against the pure-Python builder: the same file, byte for byte, and the
same errors, for every input shape (including those the C code hands back to Python)."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audits.core.merkle import MerkleError, build_tree, native
from tests.merkle.test_tree import LIMIT, SECRET, accounts_of, fast, nonce

pytestmark = pytest.mark.skipif(
    not native.available() and not os.environ.get("PORAPP_EXPECT_NATIVE"),
    reason="merkle accelerator not built (python -m audits.core.merkle.build_native)",
)


def test_accelerator_is_built_where_expected():
    # CI sets PORAPP_EXPECT_NATIVE: there a missing build fails instead of skipping.
    assert native.available()


def both(tmp_path, accounts, k, **kw) -> tuple[bytes, bytes]:
    """Build with the accelerator and with the pure-Python builder; return both files."""
    fast_path, pure_path = tmp_path / "native.bin", tmp_path / "pure.bin"
    build_tree(accounts, k, SECRET, fast_path, **kw)
    build_tree(accounts, k, SECRET, pure_path, workers=1, **kw)
    return fast_path.read_bytes(), pure_path.read_bytes()


def errors(tmp_path, accounts, k) -> tuple[tuple, tuple]:
    """The MerkleError each builder raises, as (account, field, message)."""
    out = []
    for kw in ({}, {"workers": 1}):
        with pytest.raises(MerkleError) as info:
            build_tree(accounts, k, SECRET, tmp_path / "t.bin", **kw)
        out.append((info.value.account, info.value.field, str(info.value)))
    return out[0], out[1]


account_id = st.one_of(
    st.from_regex(r"[a-z0-9@.\-]{0,20}", fullmatch=True),
    st.text(max_size=30),  # any Unicode the id may hold, and the empty id
    st.text(alphabet="é", min_size=300, max_size=400),  # > 512 UTF-8 bytes: Python path
)
balance_seq = st.sampled_from([list, tuple])
nonce_type = st.sampled_from([bytes, bytearray])  # bytearray: Python path


@fast
@given(
    k=st.integers(1, 3),
    rows=st.lists(
        st.tuples(account_id, st.lists(st.integers(0, 2**100), min_size=3, max_size=3),
                  balance_seq, nonce_type),
        min_size=1, max_size=40, unique_by=lambda r: r[0],
    ),
)  # fmt: skip
def test_same_bytes_for_any_input(tmp_path, k, rows):
    accounts = [
        (aid, kind_n(nonce(i)), kind_b(bals[:k]))
        for i, (aid, bals, kind_b, kind_n) in enumerate(rows)
    ]
    native_file, pure_file = both(tmp_path, accounts, k, snapshot="s")
    assert native_file == pure_file


def test_same_bytes_on_the_threaded_size(tmp_path):
    # 20,000 accounts pad to 32,768 leaves: the C code hashes the two halves on two threads.
    accounts = accounts_of([[i, 3 * i] for i in range(20_000)])
    native_file, pure_file = both(tmp_path, accounts, 2)
    assert native_file == pure_file


def test_same_bytes_from_a_stream_in_chunks(tmp_path):
    accounts = accounts_of([[i] for i in range(1000)])
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    build_tree(iter(accounts), 1, SECRET, a, chunk_size=7)
    build_tree(accounts, 1, SECRET, b, workers=1)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("accounts", "k"),
    [
        ([("a", nonce(0), [-1])], 1),
        ([("a", nonce(0), [LIMIT])], 1),
        ([("a", nonce(0), [1, 2])], 1),
        ([("a", b"short", [1])], 1),
        ([(7, nonce(0), [1])], 1),
        ([("a", nonce(0), [1]), ("b", nonce(1), [2]), ("a", nonce(2), [3])], 1),
        ([("a", nonce(0), [1]), ("bad",)], 1),
        ([("a", nonce(0), [1.5])], 1),
        ([("a", nonce(0), [LIMIT - 1, 0]), ("b", nonce(1), [1, 0])], 2),
    ],
    ids=["negative", "too-large", "count", "nonce", "id-type", "duplicate", "shape", "float",
         "sum-overflow"],
)  # fmt: skip
def test_same_errors(tmp_path, accounts, k):
    native_error, pure_error = errors(tmp_path, accounts, k)
    assert native_error == pure_error


def test_same_overflow_error_on_the_threaded_size(tmp_path):
    # Overflows in two assets, placed by the hash order wherever their accounts meet (often
    # in different halves): both builders must name the same lowest height, then asset.
    rows = [[0, 0] for _ in range(20_000)]
    for i in (0, 7_000, 13_000):
        rows[i] = [LIMIT // 2 + 1, 0]
    rows[19_999] = [0, LIMIT - 1]
    rows[19_998] = [0, 5]
    native_error, pure_error = errors(tmp_path, accounts_of(rows), 2)
    assert native_error == pure_error


def test_pure_python_builder_needs_no_accelerator():
    # The standalone verifier and the reference builder run without the compiled module.
    import subprocess

    code = (
        "import sys; sys.modules['audits.core.merkle._mstnative'] = None\n"
        "from audits.core.merkle import native, build_tree\n"
        "assert not native.available()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("key_bits", [1, 6, 12])
@pytest.mark.parametrize("size", [300, 20_000])  # one thread, and two
def test_same_bytes_when_sort_keys_tie_and_fingerprints_collide(
    tmp_path, monkeypatch, key_bits, size
):
    # With 64-bit keys a tie is a once-in-100,000-builds event; with a few bits, most keys tie
    # and most fingerprints of different ids collide, so the full-hash and full-id checks run.
    monkeypatch.setattr(native, "KEY_BITS", key_bits)
    accounts = accounts_of([[i % 97, i] for i in range(size)])
    native_file, pure_file = both(tmp_path, accounts, 2)
    assert native_file == pure_file
    dup = [*accounts[:150], ("user-7", nonce(10**6), [0, 0]), *accounts[150:]]
    native_error, pure_error = errors(tmp_path, dup, 2)
    assert (
        native_error == pure_error == ("user-7", "id", "account 'user-7': id: duplicate account id")
    )


def test_a_tree_wider_than_the_compiled_builder_takes_still_builds(tmp_path):
    k = native.MAX_K + 1
    accounts = [("a", nonce(0), [1] * k), ("b", nonce(1), [2] * k)]
    info = build_tree(accounts, k, SECRET, tmp_path / "t.bin")
    assert info.root_sums == (3,) * k
