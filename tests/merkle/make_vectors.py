"""Regenerate tests/vectors/*.json: ``python -m tests.merkle.make_vectors`` (deterministic)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from audits.core.merkle import Asset, build_tree, extract_proof
from tests.merkle.reference import reference_tree

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
PAD_SECRET = bytes.fromhex("5a" * 32)


def nonce(label: str) -> bytes:
    # Fixed, reproducible "random" nonces so the vectors never change.
    return hashlib.sha256(b"test-vector-nonce/" + label.encode()).digest()


CASES = {
    "one_account": {
        "description": "A single account: the tree is one leaf, the proof path is empty.",
        "snapshot": "vec-one-2026-11-25",
        "assets": [Asset("AAPLx", 18)],
        "accounts": [("alice", nonce("alice"), [1_500_000_000_000_000_000])],
    },
    "several_assets": {
        "description": "Four accounts, three assets, no padding needed (4 is a power of two).",
        "snapshot": "vec-multi-2026-11-25",
        "assets": [Asset("AAPLx", 18), Asset("SPYx", 18), Asset("USDC", 6)],
        "accounts": [
            ("alice", nonce("alice"), [2 * 10**18, 0, 1_000_000]),
            ("bob", nonce("bob"), [0, 5 * 10**17, 0]),
            ("carol", nonce("carol"), [10**18, 10**18, 250_000_000]),
            ("dave-ü", nonce("dave"), [1, 2, 3]),
        ],
    },
    "padding": {
        "description": "Three accounts padded to four leaves with one zero-balance pad leaf.",
        "snapshot": "vec-pad-2026-11-25",
        "assets": [Asset("TSLAx", 18)],
        "accounts": [
            ("alice", nonce("alice"), [7 * 10**18]),
            ("bob", nonce("bob"), [3]),
            ("carol", nonce("carol"), [0]),
        ],
    },
}


def make(name: str, case: dict) -> dict:
    assets = case["assets"]
    accounts = case["accounts"]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree.bin"
        info = build_tree(
            accounts, len(assets), PAD_SECRET, tree, snapshot=case["snapshot"], assets=assets
        )
        proofs = [extract_proof(tree, account_id=a, nonce=n) for a, n, _ in accounts]
        tree_bytes = tree.read_bytes()
    levels, leaves = reference_tree(accounts, len(assets), PAD_SECRET)
    return {
        "name": name,
        "description": case["description"],
        "format": "por-mst-v1",
        "snapshot": case["snapshot"],
        "assets": [{"code": a.code, "decimals": a.decimals} for a in assets],
        "pad_secret": PAD_SECRET.hex(),
        "accounts": [
            {"id": a, "nonce": n.hex(), "balances": [str(b) for b in bal]} for a, n, bal in accounts
        ],
        "expected": {
            "root": {"hash": info.root_hash.hex(), "sums": [str(s) for s in info.root_sums]},
            "leaf_count": info.leaf_count,
            "leaves": [
                {
                    "index": i,
                    "account_hash": ah.hex(),
                    "leaf_hash": levels[0][i][0].hex(),
                    "balances": [str(b) for b in bal],
                    "padding": pad,
                }
                for i, (ah, bal, pad) in enumerate(leaves)
            ],
            "tree_file_sha256": hashlib.sha256(tree_bytes).hexdigest(),
            "proofs": proofs,
        },
    }


def main() -> None:
    """Write one JSON file per case."""
    VECTORS.mkdir(exist_ok=True)
    for name, case in CASES.items():
        text = json.dumps(make(name, case), indent=1, ensure_ascii=False) + "\n"
        (VECTORS / f"{name}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
