"""Known-answer vectors under tests/vectors/, checked byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from audits.core.merkle import Asset, build_tree, extract_proof, leaf_hash, verify_proof
from tests.merkle.reference import reference_proof, reference_tree

VECTORS = sorted((Path(__file__).resolve().parent.parent / "vectors").glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def inputs(vec: dict):
    accounts = [
        (a["id"], bytes.fromhex(a["nonce"]), [int(b) for b in a["balances"]])
        for a in vec["accounts"]
    ]
    assets = [Asset(a["code"], a["decimals"]) for a in vec["assets"]]
    return accounts, assets, bytes.fromhex(vec["pad_secret"])


def test_the_three_required_vectors_exist():
    names = {p.stem for p in VECTORS}
    assert {"one_account", "several_assets", "padding"} <= names
    assert load(VECTORS[0])["format"] == "por-mst-v1"


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
@pytest.mark.parametrize("workers", [1, 2])
def test_builder_reproduces_vector(path, workers, tmp_path):
    vec = load(path)
    accounts, assets, secret = inputs(vec)
    tree = tmp_path / "tree.bin"
    info = build_tree(
        accounts,
        len(assets),
        secret,
        tree,
        snapshot=vec["snapshot"],
        assets=assets,
        workers=workers,
    )
    exp = vec["expected"]
    assert info.root_hash.hex() == exp["root"]["hash"]
    assert [str(s) for s in info.root_sums] == exp["root"]["sums"]
    assert info.leaf_count == exp["leaf_count"]
    assert hashlib.sha256(tree.read_bytes()).hexdigest() == exp["tree_file_sha256"]
    for (aid, nonce, _), want in zip(accounts, exp["proofs"], strict=True):
        assert extract_proof(tree, account_id=aid, nonce=nonce) == want


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_independent_reference_agrees_with_vector(path):
    vec = load(path)
    accounts, assets, secret = inputs(vec)
    levels, leaves = reference_tree(accounts, len(assets), secret)
    exp = vec["expected"]
    assert levels[-1][0][0].hex() == exp["root"]["hash"]
    assert len(leaves) == exp["leaf_count"]
    for i, (ah, bal, pad) in enumerate(leaves):
        row = exp["leaves"][i]
        assert (row["account_hash"], row["padding"]) == (ah.hex(), pad)
        assert row["leaf_hash"] == leaf_hash(ah, bal).hex() == levels[0][i][0].hex()
    for proof in exp["proofs"]:
        ref = reference_proof(levels, leaves, proof["leaf"]["index"])
        assert {key: proof[key] for key in ("root", "leaf", "path")} == ref


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_proofs_verify(path):
    vec = load(path)
    for proof in vec["expected"]["proofs"]:
        result = verify_proof(proof)
        assert result.valid, result.reason
        assert result.account_id == proof["account"]["id"]


def test_one_account_vector_by_hand():
    # Spelled out from the spec with nothing but hashlib, as an outside verifier would.
    vec = load(next(p for p in VECTORS if p.stem == "one_account"))
    acc = vec["accounts"][0]
    idb = acc["id"].encode()
    ah = hashlib.sha256(
        b"por-mst-v1/account" + len(idb).to_bytes(4, "big") + idb + bytes.fromhex(acc["nonce"])
    ).digest()
    leaf = hashlib.sha256(b"\x00" + ah + int(acc["balances"][0]).to_bytes(16, "big")).digest()
    assert vec["expected"]["root"]["hash"] == leaf.hex()
    assert vec["expected"]["proofs"][0]["path"] == []
