"""Exact edges of the por-mst-v1 byte format and the proof verifier, pinned by mutation testing.

Expected hashes are computed here with hashlib from docs/proof-format.md, or copied from its
worked example, never by calling the function under test.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import pickle
import sys
from pathlib import Path

import pytest

from audits.core.merkle import verify_proof
from audits.core.merkle.format import (
    MerkleError,
    account_hash,
    check_account,
    checked_account,
    leaf_hash,
    node_hash,
    pad_account_hash,
    u128,
)
from audits.core.merkle.proof import format_amount

VECTOR = Path(__file__).resolve().parent.parent / "vectors" / "padding.json"
NONCE = bytes(range(32))


def bob_proof() -> dict:
    """Bob's proof from the worked example of docs/proof-format.md."""
    vec = json.loads(VECTOR.read_text(encoding="utf-8"))
    (proof,) = [p for p in vec["expected"]["proofs"] if p["account"]["id"] == "bob"]
    return copy.deepcopy(proof)


def merkle_error(call, *args) -> tuple[str | None, str, str]:
    with pytest.raises(MerkleError) as info:
        call(*args)
    return info.value.account, info.value.field, info.value.detail


# --- hashes: known answers ---------------------------------------------------------------------


def test_pad_account_hash_known_answers():
    # The worked example: pad_secret = 5a x 32, i = 0.
    assert pad_account_hash(b"\x5a" * 32, 0).hex() == (
        "d5f3b6a1dbb520fc83a31ed008569ab1bfd1a980e494cb69ad2911ced69042d7"
    )
    secret = bytes(range(16))
    for i in (1, 255, 256, 2**40 + 7, 2**64 - 1):
        preimage = b"por-mst-v1/pad" + secret + i.to_bytes(8, "big")
        assert pad_account_hash(secret, i) == hashlib.sha256(preimage).digest()
    assert pad_account_hash(bytearray(secret), 3) == pad_account_hash(secret, 3)
    with pytest.raises(OverflowError):
        pad_account_hash(secret, 2**64)  # u64be has no room for it


def test_account_and_leaf_hash_known_answers():
    nonce = bytes.fromhex("3f1482af676fb47681bb12243e007b545f98747cb3d9238224ee1e58f8751f20")
    bob = account_hash("bob", nonce)
    assert bob.hex() == "4e4b802e1d67920776582ce80caa15dc9f6be73b97fde8c4e069165fa40671d2"
    assert leaf_hash(bob, [3]).hex() == (
        "3e7ac9f3644ef3ad3725fbde18a230d8eaab2b7243c1359b1a687db9d428dfe4"
    )
    # A multi-byte id is measured in UTF-8 bytes, not characters.
    idb = "zoë".encode()
    expected = hashlib.sha256(b"por-mst-v1/account" + b"\x00\x00\x00\x04" + idb + NONCE)
    assert account_hash("zoë", NONCE) == expected.digest()


def test_node_hash_known_answers():
    # Level 1, node 0 of the worked example.
    left = bytes.fromhex("1e027207091c86250b96a9c9fbc84625d0b21cad014484a8853a562eb4818368")
    right = bytes.fromhex("3e7ac9f3644ef3ad3725fbde18a230d8eaab2b7243c1359b1a687db9d428dfe4")
    assert node_hash(left, [7000000000000000000], right, [3]).hex() == (
        "3ea1790ba02c1d9cb37bdab043612ada236ea7166c513dcee4698a65e6d839fb"
    )
    # Two assets: each side's sums follow its own hash, in asset order.
    lh, rh = b"\x11" * 32, b"\x22" * 32
    expected = hashlib.sha256(
        b"\x01"
        + lh
        + (5).to_bytes(16, "big")
        + (2**128 - 1).to_bytes(16, "big")
        + rh
        + (0).to_bytes(16, "big")
        + (7).to_bytes(16, "big")
    ).digest()
    assert node_hash(lh, [5, 2**128 - 1], rh, [0, 7]) == expected
    assert node_hash(rh, [0, 7], lh, [5, 2**128 - 1]) != expected  # order matters


def test_u128_edges():
    assert u128(0) == bytes(16)
    assert u128(2**128 - 1) == b"\xff" * 16
    assert u128(1) == bytes(15) + b"\x01"
    with pytest.raises(OverflowError):
        u128(2**128)


# --- input checks: exact errors ----------------------------------------------------------------


def test_account_shape_errors():
    long_acc = ("x" * 100,)
    assert merkle_error(checked_account, long_acc, 1) == (
        repr(long_acc)[:80],
        "account",
        "expected (account_id, nonce, balances)",
    )
    assert merkle_error(checked_account, "abc", 1)[:2] == ("'abc'", "account")
    assert merkle_error(checked_account, ("a", NONCE), 1)[1] == "account"
    # Lists are accepted too, and the nonce comes back as bytes.
    assert checked_account(["a", bytearray(NONCE), [1]], 1) == ("a", NONCE, [1])


def test_account_field_errors():
    assert merkle_error(check_account, 5, NONCE, [1], 1) == ("5", "id", "must be str, got int")
    assert merkle_error(check_account, "a\udc80", NONCE, [1], 1) == (
        "a\udc80",
        "id",
        "not encodable as UTF-8 (surrogates not allowed)",
    )
    assert merkle_error(check_account, "a", "n" * 32, [1], 1) == (
        "a",
        "nonce",
        "must be bytes, got str",
    )
    assert merkle_error(check_account, "a", NONCE[:31], [1], 1) == (
        "a",
        "nonce",
        "must be 32 bytes, got 31",
    )
    for not_a_sequence in ("12", b"\x01", {1}, 5):
        assert merkle_error(check_account, "a", NONCE, not_a_sequence, 1) == (
            "a",
            "balances",
            "must be a sequence of integers",
        )
    assert merkle_error(check_account, "a", NONCE, [1], 2) == (
        "a",
        "balances",
        "expected 2 balances, got 1",
    )
    assert merkle_error(check_account, "a", NONCE, [1, 2.0], 2) == (
        "a",
        "balances[1]",
        "must be int, got float",
    )
    assert merkle_error(check_account, "a", NONCE, [0, -1], 2) == (
        "a",
        "balances[1]",
        "negative balance -1",
    )
    assert merkle_error(check_account, "a", NONCE, [2**128], 1) == (
        "a",
        "balances[0]",
        f"amount {2**128} out of range (>= 2**128)",
    )
    check_account("a", memoryview(NONCE), (0, 2**128 - 1), 2)  # both edges accepted


def test_merkle_error_message_and_pickling():
    err = MerkleError("eve", "balances[1]", "negative balance -5")
    assert str(err) == "account 'eve': balances[1]: negative balance -5"
    assert str(MerkleError(None, "accounts", "empty")) == "accounts: empty"
    back = pickle.loads(pickle.dumps(err))
    assert (back.account, back.field, back.detail, str(back)) == (
        "eve",
        "balances[1]",
        "negative balance -5",
        str(err),
    )


# --- the verifier ------------------------------------------------------------------------------


def test_a_valid_proof_reports_everything_it_checked():
    result = verify_proof(bob_proof())
    assert result.valid and result.reason == ""
    assert result.snapshot == "vec-pad-2026-11-25"
    assert result.assets == (("TSLAx", 18),)
    assert result.account_id == "bob"
    assert result.balances == (3,)
    assert result.root_hash == "072ddba5c2bd5e9dbcb6d849746c96a72b15b72c56aba5b8e5a1f0bb9fc06bd4"
    assert result.root_sums == (7000000000000000003,)
    assert result.notes == ()


def test_a_proof_without_account_says_so():
    proof = bob_proof()
    del proof["account"]
    result = verify_proof(proof)
    assert result.valid and result.account_id is None
    assert result.notes == ("no account section: the leaf is not tied to an account id",)


def _set(path: str, value):
    def change(proof: dict) -> None:
        *parents, last = path.split(".")
        node = proof
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(key: str):
    return lambda proof: proof.pop(key)


HEX = "00" * 32
CASES = [
    (_set("format", "por-mst-v2"), "format must be 'por-mst-v1'"),
    (_set("snapshot", 5), "snapshot must be a string"),
    (_set("assets", []), "assets must be a non-empty list"),
    (_set("assets", "TSLAx"), "assets must be a non-empty list"),
    (_set("assets.0", "TSLAx"), "assets[0] must be an object"),
    (_set("assets.0.code", 1), "assets[0] needs a string code and integer decimals 0..255"),
    (_set("assets.0.decimals", 256), "assets[0] needs a string code and integer decimals 0..255"),
    (_set("assets.0.decimals", -1), "assets[0] needs a string code and integer decimals 0..255"),
    (_set("assets.0.decimals", True), "assets[0] needs a string code and integer decimals 0..255"),
    (_set("root", []), "root must be an object"),
    (_set("root.hash", "AB" * 32), "root.hash must be 64 lowercase hex digits"),
    (_set("root.hash", 5), "root.hash must be 64 lowercase hex digits"),
    (_set("root.sums", "7"), "root.sums must be a list of 1 decimal strings"),
    (_set("root.sums", ["1", "2"]), "root.sums must be a list of 1 decimal strings"),
    (_set("root.sums", ["07"]), "root.sums[0] must be a canonical non-negative decimal string"),
    (_set("root.sums", [7]), "root.sums[0] must be a canonical non-negative decimal string"),
    (_set("root.sums", [str(2**128)]), "root.sums[0] out of range (>= 2**128)"),
    (_set("leaf", None), "leaf must be an object"),
    (_set("leaf.account_hash", "ab"), "leaf.account_hash must be 64 lowercase hex digits"),
    (_set("leaf.balances", ["-3"]), "leaf.balances[0] must be a canonical non-negative decimal "
     "string"),
    (_set("leaf.index", 4), "leaf.index must be an integer in [0, 2**2)"),
    (_set("leaf.index", -1), "leaf.index must be an integer in [0, 2**2)"),
    (_set("leaf.index", 1.0), "leaf.index must be an integer in [0, 2**2)"),
    (_set("path", {}), "path must be a list of at most 64 siblings"),
    (_set("path", [{"hash": HEX, "sums": ["0"]}] * 65), "path must be a list of at most 64 "
     "siblings"),
    (_set("path.0", []), "path[0] must be an object"),
    (_set("path.1.hash", "x"), "path[1].hash must be 64 lowercase hex digits"),
    (_set("path.1.sums", []), "path[1].sums must be a list of 1 decimal strings"),
    (_set("account", "bob"), "account must be an object"),
    (_set("account.id", 5), "account.id must be a string"),
    (_set("account.id", "b\udc80b"), "account.id is not valid UTF-8 text"),
    (_set("account.id", "alice"), "leaf.account_hash does not match account id and nonce"),
    (_set("account.nonce", HEX), "leaf.account_hash does not match account id and nonce"),
    (_set("account.nonce", None), "account.nonce must be 64 lowercase hex digits"),
    (_set("root.hash", HEX), "recomputed root hash differs from root.hash"),
    (_set("leaf.balances", ["4"]), "recomputed root hash differs from root.hash"),
    (_set("leaf.index", 0), "recomputed root hash differs from root.hash"),
    (_set("root.sums", ["7000000000000000004"]), "recomputed root sums differ from root.sums"),
    (_delete("root"), "root must be an object"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "reason"), CASES)
def test_each_invalid_proof_gives_its_reason(change, reason):
    proof = bob_proof()
    change(proof)
    result = verify_proof(proof)
    assert (result.valid, result.reason) == (False, reason)


def test_a_proof_that_is_not_an_object():
    assert verify_proof([]).reason == "proof must be an object"


def test_a_path_of_exactly_64_siblings_is_read_to_the_end():
    proof = bob_proof()
    del proof["account"]
    proof["path"] = [{"hash": HEX, "sums": ["0"]}] * 64
    proof["leaf"]["index"] = 2**64 - 1
    assert verify_proof(proof).reason == "recomputed root hash differs from root.hash"


def test_the_overflow_is_named_at_its_height():
    proof = bob_proof()
    del proof["account"]
    proof["leaf"]["balances"] = [str(2**128 - 1)]
    result = verify_proof(proof)  # height 1: 2**128 - 1 + 7e18
    assert result.reason == "subtotal at height 1 overflows u128"
    assert result.balances == (2**128 - 1,) and result.root_sums == (7000000000000000003,)
    proof["path"][0]["sums"] = ["0"]
    proof["path"][1]["sums"] = ["1"]
    assert verify_proof(proof).reason == "subtotal at height 2 overflows u128"


def test_a_failed_proof_still_reports_what_it_read():
    proof = bob_proof()
    proof["root"]["sums"] = ["1"]
    result = verify_proof(proof)
    assert not result.valid
    assert (result.snapshot, result.assets, result.account_id) == (
        "vec-pad-2026-11-25",
        (("TSLAx", 18),),
        "bob",
    )
    assert result.root_hash == proof["root"]["hash"] and result.root_sums == (1,)


def test_the_verifier_never_raises_even_at_the_recursion_limit():
    # Raise the limit step by step from just above the current depth: the first call that
    # returns must be the one whose RecursionError the verifier caught, and it is a refusal.
    proof = bob_proof()
    depth = len(inspect.stack())
    old = sys.getrecursionlimit()
    results = []
    for extra in range(1, 200):
        try:
            sys.setrecursionlimit(depth + extra)
        except RecursionError:
            continue  # below the depth we are already at
        try:
            results.append(verify_proof(proof))
        except RecursionError:
            continue  # the limit was hit before the verifier's own guard
        finally:
            sys.setrecursionlimit(old)
        if results[-1].valid:
            break
    assert (results[0].valid, results[0].reason) == (False, "proof nested too deeply")
    assert results[-1].valid


def test_asset_decimals_up_to_255_are_accepted():
    proof = bob_proof()
    proof["assets"][0]["decimals"] = 255
    assert verify_proof(proof).valid
    proof["assets"][0]["decimals"] = 0
    assert verify_proof(proof).assets == (("TSLAx", 0),)


@pytest.mark.parametrize(
    ("value", "decimals", "shown"),
    [(0, 0, "0"), (7, 0, "7"), (7, 1, "0.7"), (10, 1, "1.0"), (3, 18, "0.000000000000000003"),
     (7000000000000000003, 18, "7.000000000000000003"), (12345, 2, "123.45")],
)  # fmt: skip
def test_format_amount(value, decimals, shown):
    assert format_amount(value, decimals) == shown


# --- the command-line verifier, in process -----------------------------------------------------


def test_verify_main_prints_the_summary_then_valid(tmp_path, capsys, monkeypatch):
    from audits.core.verify import main

    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bob_proof()), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["verify", str(path)])
    assert main() == 0
    assert capsys.readouterr().out.splitlines() == [
        'snapshot: "vec-pad-2026-11-25"',
        'account:  "bob"',
        'balance:  0.000000000000000003 "TSLAx"',
        "root:     072ddba5c2bd5e9dbcb6d849746c96a72b15b72c56aba5b8e5a1f0bb9fc06bd4",
        'total:    7.000000000000000003 "TSLAx"',
        "VALID",
    ]


def test_verify_main_without_account_prints_the_note_and_no_account(tmp_path, capsys):
    from audits.core.verify import main

    proof = bob_proof()
    del proof["account"]
    proof["root"]["sums"] = ["1"]
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof), encoding="utf-8")
    assert main([str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("account:") for line in out)
    assert out[-2:] == [
        "note:     no account section: the leaf is not tied to an account id",
        "INVALID: recomputed root sums differ from root.sums",
    ]
    assert 'total:    0.000000000000000001 "TSLAx"' in out


def test_verify_main_refuses_bad_usage_and_unreadable_files(tmp_path, capsys):
    from audits.core.verify import main

    assert main([]) == 1
    assert main(["a", "b"]) == 1
    assert capsys.readouterr().err == "usage: python -m audits.verify PROOF.json\n" * 2
    missing = tmp_path / "missing.json"
    assert main([str(missing)]) == 1
    assert capsys.readouterr().out.startswith("INVALID: cannot read proof: [Errno 2]")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff")
    assert main([str(bad)]) == 1
    assert capsys.readouterr().out.startswith("INVALID: cannot read proof: 'utf-8' codec")
    bad.write_text("[]", encoding="utf-8")
    assert main([str(bad)]) == 1
    assert capsys.readouterr().out == "INVALID: proof must be an object\n"


# --- the account record stream -----------------------------------------------------------------


def test_record_chunks_close_at_exactly_the_requested_size():
    from audits.core.merkle.records import encode_account, encode_accounts

    accounts = [(f"u{i}", NONCE, [i]) for i in range(4)]
    size = len(encode_account(accounts[0], 1))  # 4 + 2 + 32 + 16 = 54
    assert size == 54
    assert [len(c) for c in encode_accounts(accounts, 1, chunk_bytes=size)] == [size] * 4
    assert [len(c) for c in encode_accounts(accounts, 1, chunk_bytes=2 * size)] == [2 * size] * 2
    assert [len(c) for c in encode_accounts(accounts, 1, chunk_bytes=size + 1)] == [2 * size] * 2
    assert list(encode_accounts([], 1)) == []


def test_decoding_an_empty_stream_gives_nothing():
    from audits.core.merkle.records import decode_records

    assert list(decode_records([], 1)) == []
    assert list(decode_records([b"", b""], 2)) == []


def test_a_bad_record_is_numbered_from_zero_in_stream_order():
    from audits.core.merkle.records import decode_records, encode_account

    good = [encode_account((f"u{i}", NONCE, [i]), 1) for i in range(3)]
    bad = (2).to_bytes(4, "big") + b"\xff\xfe" + NONCE + bytes(16)
    stream = b"".join(good) + bad
    with pytest.raises(MerkleError) as info:
        list(decode_records([stream[:70], stream[70:]], 1))
    assert (info.value.account, info.value.field, info.value.detail) == (
        repr(b"\xff\xfe"),
        "id",
        "not valid UTF-8 (record 3)",
    )
    long_bad = (100).to_bytes(4, "big") + b"\xff" * 100 + NONCE + bytes(16)
    with pytest.raises(MerkleError) as info:
        list(decode_records([long_bad], 1))
    assert info.value.account == repr(b"\xff" * 100)[:80]
    with pytest.raises(MerkleError) as info:
        list(decode_records([b"".join(good)[:-1]], 1))
    assert str(info.value) == "records: stream ends inside a record (record 2)"
