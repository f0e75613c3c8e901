"""Builder, extraction and verification: properties, tampering, overflow and input errors."""

from __future__ import annotations

import copy
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits.core.merkle import (
    MerkleError,
    account_hash,
    build_tree,
    extract_proof,
    tree_info,
    verify_proof,
)
from tests.merkle.reference import reference_tree

SECRET = b"\x42" * 32
LIMIT = 2**128


def nonce(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def accounts_of(balances: list[list[int]]) -> list[tuple[str, bytes, list[int]]]:
    return [(f"user-{i}", nonce(i), b) for i, b in enumerate(balances)]


amount = st.one_of(st.integers(0, 10**6), st.integers(0, 2**100))
snapshots = st.integers(1, 3).flatmap(
    lambda k: st.lists(st.lists(amount, min_size=k, max_size=k), min_size=1, max_size=40)
)
fast = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fast
@given(balances=snapshots, workers=st.sampled_from([1, 2]))
def test_every_real_leaf_verifies_and_root_sums_are_totals(tmp_path, balances, workers):
    k = len(balances[0])
    accs = accounts_of(balances)
    tree = tmp_path / "t.bin"
    info = build_tree(accs, k, SECRET, tree, workers=workers, chunk_size=7)
    assert info.root_sums == tuple(sum(b[j] for b in balances) for j in range(k))
    assert info.real_count == len(accs)
    assert info.leaf_count >= len(accs) and info.leaf_count & (info.leaf_count - 1) == 0
    levels, _ = reference_tree(accs, k, SECRET)
    assert info.root_hash == levels[-1][0][0]
    assert tree_info(tree) == info  # header re-read; it also checks the file size
    for aid, n, bal in accs:
        result = verify_proof(extract_proof(tree, account_id=aid, nonce=n))
        assert result.valid, result.reason
        assert result.balances == tuple(bal)
        assert result.root_sums == info.root_sums


def _mutations(proof: dict) -> list[tuple[str, dict]]:
    """One altered copy of the proof per field a cheater could touch."""
    out = []

    def alt(label, fn):
        p = copy.deepcopy(proof)
        fn(p)
        out.append((label, p))

    def bump(s: str) -> str:
        return str(int(s) + 1)

    def flip(hexs: str) -> str:
        return ("0" if hexs[0] != "0" else "1") + hexs[1:]

    alt("balance", lambda p: p["leaf"]["balances"].__setitem__(0, bump(p["leaf"]["balances"][0])))
    alt("nonce", lambda p: p["account"].__setitem__("nonce", flip(p["account"]["nonce"])))
    alt("account id", lambda p: p["account"].__setitem__("id", p["account"]["id"] + "x"))
    alt(
        "account_hash",
        lambda p: p["leaf"].__setitem__("account_hash", flip(p["leaf"]["account_hash"])),
    )
    alt("root hash", lambda p: p["root"].__setitem__("hash", flip(p["root"]["hash"])))
    alt("root sum", lambda p: p["root"]["sums"].__setitem__(0, bump(p["root"]["sums"][0])))
    alt("index+1", lambda p: p["leaf"].__setitem__("index", p["leaf"]["index"] + 1))
    alt(
        "index high bit",
        lambda p: p["leaf"].__setitem__("index", p["leaf"]["index"] + 2 ** len(p["path"])),
    )
    alt("drop sibling", lambda p: p["path"].pop() if p["path"] else p["path"].append(p["root"]))
    for i in range(len(proof["path"])):
        alt(
            f"sibling {i} hash",
            lambda p, i=i: p["path"][i].__setitem__("hash", flip(p["path"][i]["hash"])),
        )
        alt(
            f"sibling {i} sum",
            lambda p, i=i: p["path"][i]["sums"].__setitem__(0, bump(p["path"][i]["sums"][0])),
        )
    return out


@fast
@given(balances=snapshots, pick=st.integers(0, 10**6))
def test_any_single_change_makes_verification_fail(tmp_path, balances, pick):
    k = len(balances[0])
    accs = accounts_of(balances)
    tree = tmp_path / "t.bin"
    build_tree(accs, k, SECRET, tree, workers=1)
    aid, n, _ = accs[pick % len(accs)]
    proof = extract_proof(tree, account_id=aid, nonce=n)
    assert verify_proof(proof).valid
    for label, bad in _mutations(proof):
        result = verify_proof(bad)
        assert not result.valid, label
        assert result.reason


def test_extract_by_index_and_hash_and_unknown(tmp_path):
    accs = accounts_of([[1], [2], [3]])
    tree = tmp_path / "t.bin"
    info = build_tree(accs, 1, SECRET, tree)
    assert tree_info(tree) == info
    ah = account_hash(accs[1][0], accs[1][1])
    by_hash = extract_proof(tree, account_hash_=ah)
    by_index = extract_proof(tree, index=by_hash["leaf"]["index"])
    assert by_hash == by_index and "account" not in by_hash
    result = verify_proof(by_hash)
    assert result.valid and result.notes  # valid, but not tied to an id
    with pytest.raises(MerkleError) as err:
        extract_proof(tree, account_id="nobody", nonce=nonce(99))
    assert err.value.account == "nobody"
    with pytest.raises(MerkleError):
        extract_proof(tree, index=4)


def test_padding_leaves_are_zero_and_hidden_among_real(tmp_path):
    accs = accounts_of([[10]] * 5)
    tree = tmp_path / "t.bin"
    info = build_tree(accs, 1, SECRET, tree)
    assert (info.leaf_count, info.real_count, info.root_sums) == (8, 5, (50,))
    real = {extract_proof(tree, account_id=a, nonce=n)["leaf"]["index"] for a, n, _ in accs}
    pads = [extract_proof(tree, index=i) for i in range(8) if i not in real]
    assert len(pads) == 3
    assert all(p["leaf"]["balances"] == ["0"] and verify_proof(p).valid for p in pads)


# --- overflow -------------------------------------------------------------------------------


def test_max_amount_alone_is_fine(tmp_path):
    info = build_tree(accounts_of([[LIMIT - 1], [0]]), 1, SECRET, tmp_path / "t.bin")
    assert info.root_sums == (LIMIT - 1,)


@pytest.mark.parametrize("workers", [1, 2])
def test_amount_out_of_range_names_account(tmp_path, workers):
    accs = accounts_of([[1, 1]] * 3 + [[1, LIMIT]])
    with pytest.raises(MerkleError) as err:
        build_tree(accs, 2, SECRET, tmp_path / "t.bin", workers=workers)
    assert (err.value.account, err.value.field) == ("user-3", "balances[1]")
    assert "user-3" in str(err.value) and "2**128" in str(err.value)
    assert not list(tmp_path.iterdir())  # no partial files left behind


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("n", [2, 5, 16])
def test_sum_overflow_is_clean(tmp_path, workers, n):
    accs = accounts_of([[0, 1]] * (n - 2) + [[LIMIT // 2, 1], [LIMIT // 2, 1]])
    with pytest.raises(MerkleError) as err:
        build_tree(accs, 2, SECRET, tmp_path / "t.bin", workers=workers)
    assert err.value.field == "sums[0]"
    assert "2**128" in str(err.value)


def test_verifier_rejects_sum_overflow_in_path():
    accs = accounts_of([[LIMIT - 1], [0]])
    levels, leaves = reference_tree(accs, 1, SECRET)
    i = next(i for i, leaf in enumerate(leaves) if leaf[1] == [LIMIT - 1])
    sib = levels[0][i ^ 1]
    proof = {
        "format": "por-mst-v1",
        "snapshot": "s",
        "assets": [{"code": "X", "decimals": 0}],
        "root": {"hash": "00" * 32, "sums": ["0"]},
        "leaf": {"index": i, "account_hash": leaves[i][0].hex(), "balances": [str(LIMIT - 1)]},
        "path": [{"hash": sib[0].hex(), "sums": ["1"]}],
    }
    result = verify_proof(proof)
    assert not result.valid and "overflow" in result.reason


# --- input errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk", [3, 100])
def test_duplicate_id_named(tmp_path, workers, chunk):
    accs = [*accounts_of([[1]] * 6), ("user-2", nonce(77), [5])]
    with pytest.raises(MerkleError) as err:
        build_tree(accs, 1, SECRET, tmp_path / "t.bin", workers=workers, chunk_size=chunk)
    assert (err.value.account, err.value.field) == ("user-2", "id")
    assert "duplicate" in str(err.value)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        (("eve", nonce(1), [1]), "balances", "expected 2 balances, got 1"),
        (("eve", nonce(1), [1, 2, 3]), "balances", "expected 2 balances, got 3"),
        (("eve", nonce(1), [1, -5]), "balances[1]", "negative balance -5"),
        (("eve", nonce(1)[:31], [1, 2]), "nonce", "must be 32 bytes, got 31"),
        (("eve", nonce(1).hex(), [1, 2]), "nonce", "must be bytes"),
        (("eve", nonce(1), [1, 2.5]), "balances[1]", "must be int"),
        (("eve\udc80", nonce(1), [1, 2]), "id", "UTF-8"),
    ],
)
def test_bad_account_named(tmp_path, workers, bad, field, words):
    accs = [*accounts_of([[1, 1]] * 4), bad]
    with pytest.raises(MerkleError) as err:
        build_tree(accs, 2, SECRET, tmp_path / "t.bin", workers=workers)
    assert err.value.field == field
    assert err.value.account is not None and err.value.account.startswith("eve")
    assert words in str(err.value) and "eve" in str(err.value)


def test_non_string_id_named(tmp_path):
    with pytest.raises(MerkleError) as err:
        build_tree([(42, nonce(1), [1])], 1, SECRET, tmp_path / "t.bin")
    assert (err.value.account, err.value.field) == ("42", "id")


def test_empty_snapshot_is_an_error(tmp_path):
    with pytest.raises(MerkleError) as err:
        build_tree(iter([]), 1, SECRET, tmp_path / "t.bin")
    assert err.value.field == "accounts" and "empty snapshot" in str(err.value)
    assert err.value.account is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("k", "secret", "field"), [(0, SECRET, "k"), (1, b"short", "pad_secret")])
def test_bad_parameters(tmp_path, k, secret, field):
    with pytest.raises(MerkleError) as err:
        build_tree(accounts_of([[1]]), k, secret, tmp_path / "t.bin")
    assert err.value.field == field


def test_streams_generator_without_len(tmp_path):
    gen = ((f"g{i}", nonce(i), [i]) for i in range(50))
    info = build_tree(gen, 1, SECRET, tmp_path / "t.bin", workers=2, chunk_size=16)
    assert (info.real_count, info.leaf_count, info.root_sums) == (50, 64, (1225,))


# --- ingest paths (list split across workers vs pipelined stream) ---------------------------


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("chunk", [5, 64, 1000])
def test_list_and_stream_give_identical_files(tmp_path, k, workers, chunk):
    accs = [(f"u{i}", nonce(i), [i * 31 + j for j in range(k)]) for i in range(77)]
    ref = tmp_path / "ref.bin"
    build_tree(accs, k, SECRET, ref, workers=1)
    as_list = tmp_path / "list.bin"
    as_stream = tmp_path / "stream.bin"
    build_tree(accs, k, SECRET, as_list, workers=workers, chunk_size=chunk)
    build_tree(iter(accs), k, SECRET, as_stream, workers=workers, chunk_size=chunk)
    assert as_list.read_bytes() == ref.read_bytes() == as_stream.read_bytes()
    levels, _ = reference_tree(accs, k, SECRET)
    assert tree_info(ref).root_hash == levels[-1][0][0]


@pytest.mark.parametrize("as_stream", [False, True])
@pytest.mark.parametrize(("first", "second"), [(3, 40), (40, 41), (0, 76)])
def test_duplicate_across_worker_shares_and_chunks(tmp_path, as_stream, first, second):
    # The same id with a different nonce, placed in different workers' shares or chunks.
    accs = [(f"u{i}", nonce(i), [i]) for i in range(77)]
    accs[second] = (accs[first][0], nonce(1000), [5])
    src = iter(accs) if as_stream else accs
    with pytest.raises(MerkleError) as err:
        build_tree(src, 1, SECRET, tmp_path / "t.bin", workers=2, chunk_size=32)
    assert (err.value.account, err.value.field) == (f"u{first}", "id")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("position", [0, 33, 76])
def test_stream_bad_account_named_from_worker(tmp_path, position):
    accs = [(f"u{i}", nonce(i), [i]) for i in range(77)]
    accs[position] = ("eve", nonce(1), [-5])
    with pytest.raises(MerkleError) as err:
        build_tree(iter(accs), 1, SECRET, tmp_path / "t.bin", workers=2, chunk_size=16)
    assert (err.value.account, err.value.field) == ("eve", "balances[0]")
    assert not list(tmp_path.iterdir())


def test_large_list_and_stream_identical_with_auto_workers(tmp_path):
    # Above the serial threshold, so the default (all CPUs) forks for real.
    accs = [(f"acct-{i}", nonce(i), [i]) for i in range(40_000)]
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    build_tree(accs, 1, SECRET, a, chunk_size=15_000)
    build_tree(iter(accs), 1, SECRET, b, chunk_size=15_000)
    assert a.read_bytes() == b.read_bytes()
    for aid, n, _ in accs[::4999]:
        assert verify_proof(extract_proof(a, account_id=aid, nonce=n)).valid


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("workers", [1, 2])
def test_small_slabs_give_identical_files(tmp_path, monkeypatch, k, workers):
    # Sorting and leaf hashing work a slab at a time on big trees; force many tiny slabs.
    from audits.core.merkle import builder

    accs = [(f"s{i}", nonce(i), [i + j for j in range(k)]) for i in range(45)]
    ref = tmp_path / "ref.bin"
    build_tree(accs, k, SECRET, ref, workers=1)
    monkeypatch.setattr(builder, "_SLAB", 4)
    slabbed = tmp_path / "slabs.bin"
    build_tree(accs, k, SECRET, slabbed, workers=workers)
    assert slabbed.read_bytes() == ref.read_bytes()
