"""TreeReader (a memory-mapped tree serving many proofs) gives exactly extract_proof's proofs
and errors, and a layout's level offsets are the sum of the levels below, at any size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.merkle import Asset, MerkleError, TreeReader, build_tree, extract_proof
from audits.core.merkle.format import account_hash
from audits.core.merkle.treefile import Layout


def _tree(path, n: int):
    accounts = [(f"u{i}", bytes([i % 256]) * 32, [i, 2 * i]) for i in range(n)]
    build_tree(accounts, 2, b"p" * 32, path, snapshot="s", assets=[Asset("A", 2), Asset("B", 0)])
    return accounts


@pytest.mark.parametrize("n", [1, 2, 3, 17])
def test_reader_proofs_equal_extract_proof(tmp_path, n):
    path = tmp_path / "t.mst"
    accounts = _tree(path, n)
    reader = TreeReader(path)
    try:
        for account_id, nonce, _ in accounts:
            assert reader.proof(account_id=account_id, nonce=nonce) == extract_proof(
                path, account_id=account_id, nonce=nonce
            )
            ah = account_hash(account_id, nonce)
            assert reader.proof(account_hash_=ah) == extract_proof(path, account_hash_=ah)
        for where in ({"account_hash_": b"\xff" * 32}, {"index": 1 << 40}):
            with pytest.raises(MerkleError) as expected:
                extract_proof(path, **where)
            with pytest.raises(MerkleError) as got:
                reader.proof(**where)
            assert (got.value.field, str(got.value)) == (expected.value.field, str(expected.value))
    finally:
        reader.close()


@settings(max_examples=60)
@given(st.integers(0, 40), st.integers(1, 4), st.integers(0, 300))
def test_level_offsets_are_the_sum_of_the_levels_below(log_n, k, meta_len):
    lay = Layout(k, 1 << log_n, meta_len)
    for level in range(log_n + 2):
        below = sum((1 << log_n) >> h for h in range(1, level))
        want = lay.header_size + (
            0 if level == 0 else (1 << log_n) * lay.leaf_record + lay.node_record * below
        )
        assert lay.level_offset(level) == want
