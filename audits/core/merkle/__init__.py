"""Merkle sum tree (``por-mst-v1``) for liability proofs; framework-free, stdlib only.

Public API (the Django side calls these; the format is in docs/proof-format.md)::

    info = build_tree(accounts, k, pad_secret, path, snapshot="2026-11-25", assets=[...])
        # accounts: iterable of (account_id: str, nonce: bytes[32], balances: Sequence[int])
        # returns TreeInfo(root_hash, root_sums, leaf_count, real_count, k, snapshot, assets)
    info = build_tree_from_records(chunks, k, pad_secret, path, ...)
        # chunks: the same accounts as a byte stream of records (records.py); the fast
        # input for large snapshots: no Python object per account
    proof = extract_proof(path, account_id="alice", nonce=n)  # or account_hash_=..., index=...
    result = verify_proof(proof)  # VerifyResult(valid, reason, balances, root_hash, ...)
    tree_info(path)  # header of an existing tree file

Every input problem raises MerkleError, whose ``account`` and ``field`` say where it is.
"""

from .builder import build_tree, build_tree_from_records, default_workers
from .format import (
    FORMAT,
    Asset,
    MerkleError,
    account_hash,
    leaf_hash,
    node_hash,
    pad_account_hash,
)
from .proof import VerifyResult, format_amount, verify_proof
from .records import decode_records, encode_accounts
from .treefile import Layout, TreeInfo, TreeReader, extract_proof, tree_info

__all__ = [
    "FORMAT",
    "Asset",
    "Layout",
    "MerkleError",
    "TreeInfo",
    "TreeReader",
    "VerifyResult",
    "account_hash",
    "build_tree",
    "build_tree_from_records",
    "decode_records",
    "default_workers",
    "encode_accounts",
    "extract_proof",
    "format_amount",
    "leaf_hash",
    "node_hash",
    "pad_account_hash",
    "tree_info",
    "verify_proof",
]
