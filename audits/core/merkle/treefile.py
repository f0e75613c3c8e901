"""The on-disk tree file: layout, header, and proof extraction with ``log2(n)`` reads."""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .format import (
    AMOUNT_LEN,
    FORMAT,
    HASH_LEN,
    LEAF_TAG,
    Asset,
    MerkleError,
    _sha256,
    account_hash,
)

MAGIC = FORMAT.encode("ascii").ljust(16, b"\x00")
# magic(16) k(u32) height(u32) leaf_count(u64) real_count(u64) root_hash(32) root_sums(16k)
# meta_len(u32) meta(JSON, meta_len bytes); level 0 follows immediately.
_FIXED = 16 + 4 + 4 + 8 + 8 + HASH_LEN


@dataclass(frozen=True)
class Layout:
    """Offsets and record sizes of a tree file with ``leaf_count`` leaves and ``k`` assets."""

    k: int
    leaf_count: int
    meta_len: int

    @property
    def height(self) -> int:
        return self.leaf_count.bit_length() - 1

    @property
    def header_size(self) -> int:
        return _FIXED + AMOUNT_LEN * self.k + 4 + self.meta_len

    @property
    def leaf_record(self) -> int:
        # account_hash | balances: the leaf hash's preimage minus its 0x00 tag, so it is
        # recomputed on read instead of stored (smaller file, nothing to get out of sync).
        return HASH_LEN + AMOUNT_LEN * self.k

    @property
    def node_record(self) -> int:
        # hash | sums
        return HASH_LEN + AMOUNT_LEN * self.k

    def record_size(self, level: int) -> int:
        return self.leaf_record if level == 0 else self.node_record

    def level_offset(self, level: int) -> int:
        if level == 0:
            return self.header_size
        n = self.leaf_count
        # Nodes of levels 1 .. level-1: n/2 + n/4 + ... = n - n >> (level - 1) when n is a
        # power of two, as a tree's leaf count always is; a sum otherwise. Closed form because
        # a proof asks for every level's offset, and the sum made that quadratic.
        nodes = n - (n >> (level - 1)) if n & (n - 1) == 0 else sum(n >> h for h in range(1, level))
        return self.header_size + n * self.leaf_record + self.node_record * nodes

    @property
    def file_size(self) -> int:
        return self.level_offset(self.height + 1)


@dataclass(frozen=True)
class TreeInfo:
    """Summary of a built tree (what the Django side stores next to the snapshot)."""

    root_hash: bytes
    root_sums: tuple[int, ...]
    leaf_count: int
    real_count: int
    k: int
    snapshot: str
    assets: tuple[Asset, ...]


def pack_header(
    lay: Layout, real_count: int, root_hash: bytes, root_sums: Sequence[int], meta: bytes
) -> bytes:
    """Serialise the tree file header."""
    return b"".join(
        [
            MAGIC,
            lay.k.to_bytes(4, "big"),
            lay.height.to_bytes(4, "big"),
            lay.leaf_count.to_bytes(8, "big"),
            real_count.to_bytes(8, "big"),
            root_hash,
            *(s.to_bytes(AMOUNT_LEN, "big") for s in root_sums),
            len(meta).to_bytes(4, "big"),
            meta,
        ]
    )


def read_header(fd: int) -> tuple[Layout, TreeInfo]:
    """Read and check the header of an open tree file."""
    fixed = os.pread(fd, _FIXED, 0)
    if len(fixed) != _FIXED or fixed[:16] != MAGIC:
        raise MerkleError(None, "file", f"not a {FORMAT} tree file")
    k = int.from_bytes(fixed[16:20], "big")
    height = int.from_bytes(fixed[20:24], "big")
    leaf_count = int.from_bytes(fixed[24:32], "big")
    real_count = int.from_bytes(fixed[32:40], "big")
    root_hash = fixed[40:72]
    tail = os.pread(fd, AMOUNT_LEN * k + 4, _FIXED)
    sums = tuple(
        int.from_bytes(tail[j * AMOUNT_LEN : (j + 1) * AMOUNT_LEN], "big") for j in range(k)
    )
    meta_len = int.from_bytes(tail[AMOUNT_LEN * k :], "big")
    meta = json.loads(os.pread(fd, meta_len, _FIXED + AMOUNT_LEN * k + 4))
    lay = Layout(k, leaf_count, meta_len)
    if k < 1 or leaf_count != 1 << height or os.fstat(fd).st_size != lay.file_size:
        raise MerkleError(None, "file", "inconsistent header or truncated tree file")
    assets = tuple(Asset(a["code"], int(a["decimals"])) for a in meta["assets"])
    info = TreeInfo(root_hash, sums, leaf_count, real_count, k, meta["snapshot"], assets)
    return lay, info


def tree_info(path: str | os.PathLike[str]) -> TreeInfo:
    """Header summary of a tree file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_header(fd)[1]
    finally:
        os.close(fd)


def _sums(raw: bytes) -> list[str]:
    return [
        str(int.from_bytes(raw[o : o + AMOUNT_LEN], "big")) for o in range(0, len(raw), AMOUNT_LEN)
    ]


# How a proof reads the file: read(size, offset) -> bytes (os.pread on a descriptor, or a
# slice of a memory map in TreeReader).
Read = Callable[[int, int], bytes]


def _find_leaf(read: Read, lay: Layout, ah: bytes) -> int:
    # Leaves are sorted by account_hash, so a binary search needs log2(n) 32-byte reads.
    lo, hi = 0, lay.leaf_count
    base, size = lay.level_offset(0), lay.leaf_record
    while lo < hi:
        mid = (lo + hi) // 2
        key = read(HASH_LEN, base + mid * size)
        if key < ah:
            lo = mid + 1
        elif key > ah:
            hi = mid
        else:
            return mid
    return -1


def _proof_at(read: Read, lay: Layout, info: TreeInfo, index: int) -> dict[str, Any]:
    rl = lay.leaf_record
    off0 = lay.level_offset(0)
    leaf = read(rl, off0 + index * rl)
    path = []
    if lay.height > 0:
        sib = read(rl, off0 + (index ^ 1) * rl)
        # Level 0 stores the leaf hash preimage (account_hash | balances), not the hash.
        sib_hash = _sha256(LEAF_TAG + sib).digest()
        path.append({"hash": sib_hash.hex(), "sums": _sums(sib[HASH_LEN:])})
    rn = lay.node_record
    for h in range(1, lay.height):
        rec = read(rn, lay.level_offset(h) + ((index >> h) ^ 1) * rn)
        path.append({"hash": rec[:HASH_LEN].hex(), "sums": _sums(rec[HASH_LEN:])})
    return {
        "format": FORMAT,
        "snapshot": info.snapshot,
        "assets": [{"code": a.code, "decimals": a.decimals} for a in info.assets],
        "root": {"hash": info.root_hash.hex(), "sums": [str(s) for s in info.root_sums]},
        "leaf": {
            "index": index,
            "account_hash": leaf[:HASH_LEN].hex(),
            "balances": _sums(leaf[HASH_LEN:]),
        },
        "path": path,
    }


def _locate(
    read: Read,
    lay: Layout,
    account_id: str | None,
    nonce: bytes | None,
    account_hash_: bytes | None,
    index: int | None,
) -> int:
    if account_id is not None:
        if nonce is None:
            raise MerkleError(account_id, "nonce", "needed to locate the account")
        account_hash_ = account_hash(account_id, nonce)
    if account_hash_ is not None:
        index = _find_leaf(read, lay, bytes(account_hash_))
        if index < 0:
            raise MerkleError(account_id, "account_hash", "not in this tree")
    if index is None or not 0 <= index < lay.leaf_count:
        raise MerkleError(account_id, "index", f"no leaf {index!r} in this tree")
    return index


def _with_account(proof: dict[str, Any], account_id: str | None, nonce: bytes | None) -> dict:
    if account_id is not None and nonce is not None:
        proof["account"] = {"id": account_id, "nonce": bytes(nonce).hex()}
    return proof


def extract_proof(
    path: str | os.PathLike[str],
    *,
    account_id: str | None = None,
    nonce: bytes | None = None,
    account_hash_: bytes | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """Proof JSON dict for one leaf, found by (account_id, nonce), account hash, or index.

    With ``account_id`` and ``nonce`` the proof includes the ``account`` section for its owner.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        lay, info = read_header(fd)

        def read(size: int, offset: int) -> bytes:
            return os.pread(fd, size, offset)

        leaf = _locate(read, lay, account_id, nonce, account_hash_, index)
        proof = _proof_at(read, lay, info, leaf)
    finally:
        os.close(fd)
    return _with_account(proof, account_id, nonce)


class TreeReader:
    """A tree file kept open and memory-mapped, for a process that serves many proofs from it:
    the header is checked once, and a proof is then a few slices of the map (no system call),
    the same dict as ``extract_proof`` gives. The file must not change while open (tree files
    are content-addressed and written once)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            self.layout, self.info = read_header(fd)
            self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)

    def _read(self, size: int, offset: int) -> bytes:
        return self._map[offset : offset + size]

    def proof(
        self,
        *,
        account_id: str | None = None,
        nonce: bytes | None = None,
        account_hash_: bytes | None = None,
        index: int | None = None,
    ) -> dict[str, Any]:
        leaf = _locate(self._read, self.layout, account_id, nonce, account_hash_, index)
        return _with_account(_proof_at(self._read, self.layout, self.info, leaf), account_id, nonce)

    def close(self) -> None:
        self._map.close()
