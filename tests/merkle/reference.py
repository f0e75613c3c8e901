"""Deliberately naive, independent reading of docs/proof-format.md, used to cross-check."""

from __future__ import annotations

import hashlib


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def u128(x: int) -> bytes:
    assert 0 <= x < 2**128
    return x.to_bytes(16, "big")


def account_hash(account_id: str, nonce: bytes) -> bytes:
    idb = account_id.encode("utf-8")
    return h(b"por-mst-v1/account" + len(idb).to_bytes(4, "big") + idb + nonce)


def reference_tree(accounts, k, pad_secret):
    """Return (levels, leaves) where levels[h] is a list of (hash, sums) and leaves has hashes."""
    leaves = [(account_hash(i, n), list(b), False) for i, n, b in accounts]
    size = 1
    while size < len(leaves):
        size *= 2
    for i in range(size - len(leaves)):
        pad = h(b"por-mst-v1/pad" + pad_secret + i.to_bytes(8, "big"))
        leaves.append((pad, [0] * k, True))
    leaves.sort(key=lambda leaf: leaf[0])
    level = [(h(b"\x00" + ah + b"".join(u128(x) for x in bal)), bal) for ah, bal, _ in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = []
        for (lh, ls), (rh, rs) in zip(level[0::2], level[1::2], strict=True):
            msg = b"\x01" + lh + b"".join(u128(x) for x in ls) + rh
            msg += b"".join(u128(x) for x in rs)
            nxt.append((h(msg), [a + b for a, b in zip(ls, rs, strict=True)]))
        level = nxt
        levels.append(level)
    return levels, leaves


def reference_proof(levels, leaves, index):
    path = []
    for height in range(len(levels) - 1):
        sib = levels[height][(index >> height) ^ 1]
        path.append({"hash": sib[0].hex(), "sums": [str(s) for s in sib[1]]})
    ah, bal, _ = leaves[index]
    return {
        "root": {"hash": levels[-1][0][0].hex(), "sums": [str(s) for s in levels[-1][0][1]]},
        "leaf": {"index": index, "account_hash": ah.hex(), "balances": [str(b) for b in bal]},
        "path": path,
    }
