"""Byte-level definitions of the ``por-mst-v1`` Merkle sum tree (stdlib only)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

FORMAT = "por-mst-v1"
ACCOUNT_PREFIX = b"por-mst-v1/account"
PAD_PREFIX = b"por-mst-v1/pad"
LEAF_TAG = b"\x00"
NODE_TAG = b"\x01"
HASH_LEN = 32
NONCE_LEN = 32
AMOUNT_LEN = 16
AMOUNT_LIMIT = 1 << 128  # amounts and sums must stay below this (u128)
MAX_ID_BYTES = (1 << 32) - 1  # the account hash prefixes the id with its length as u32be

_sha256 = hashlib.sha256


class MerkleError(ValueError):
    """Invalid snapshot input or tree; names the account (if any) and the offending field."""

    def __init__(self, account: str | None, field: str, detail: str) -> None:
        self.account = account
        self.field = field
        self.detail = detail
        where = f"account {account!r}: " if account is not None else ""
        super().__init__(f"{where}{field}: {detail}")

    def __reduce__(self) -> tuple[type[MerkleError], tuple[str | None, str, str]]:
        # Errors raised in a forked worker travel back to the parent pickled.
        return (MerkleError, (self.account, self.field, self.detail))


@dataclass(frozen=True)
class Asset:
    """One column of the tree: asset code and the number of decimals of its smallest unit."""

    code: str
    decimals: int


def u128(value: int) -> bytes:
    """Encode an amount as 16-byte big-endian unsigned; raises OverflowError if out of range."""
    # Equivalent mutant: to_bytes() without "big" (the default since Python 3.11).
    return value.to_bytes(AMOUNT_LEN, "big")  # pragma: no mutate


def account_hash(account_id: str, nonce: bytes) -> bytes:
    """H(prefix || u32be(len(id)) || id || nonce) for a real account."""
    # pragma: no mutate start (equivalent: "UTF-8" is the same codec, "big" the default order)
    idb = account_id.encode("utf-8")
    return _sha256(ACCOUNT_PREFIX + len(idb).to_bytes(4, "big") + idb + bytes(nonce)).digest()
    # pragma: no mutate end


def pad_account_hash(pad_secret: bytes, i: int) -> bytes:
    """Account hash of the i-th padding leaf of a snapshot."""
    # pragma: no mutate start (equivalent: to_bytes() without "big", the default since 3.11)
    return _sha256(PAD_PREFIX + bytes(pad_secret) + i.to_bytes(8, "big")).digest()
    # pragma: no mutate end


def leaf_hash(acct_hash: bytes, balances: Sequence[int]) -> bytes:
    """H(0x00 || account_hash || u128(b_0) || ... )."""
    return _sha256(LEAF_TAG + acct_hash + b"".join(u128(b) for b in balances)).digest()


def node_hash(
    left_hash: bytes, left_sums: Sequence[int], right_hash: bytes, right_sums: Sequence[int]
) -> bytes:
    """H(0x01 || L.hash || u128(L.sums)... || R.hash || u128(R.sums)...)."""
    parts = [NODE_TAG, left_hash, *(u128(s) for s in left_sums), right_hash]
    parts.extend(u128(s) for s in right_sums)
    return _sha256(b"".join(parts)).digest()


def checked_account(acc: object, k: int) -> tuple[str, bytes, Sequence[int]]:
    """``acc`` unpacked as (account_id, nonce, balances) after check_account; else MerkleError."""
    if not isinstance(acc, tuple | list) or len(acc) != 3:
        raise MerkleError(repr(acc)[:80], "account", "expected (account_id, nonce, balances)")
    account_id, nonce, balances = acc
    check_account(account_id, nonce, balances, k)
    return account_id, bytes(nonce), balances


def check_account(account_id: object, nonce: object, balances: object, k: int) -> None:
    """Raise MerkleError describing the first problem with one input account, if any."""
    if not isinstance(account_id, str):
        raise MerkleError(repr(account_id), "id", f"must be str, got {type(account_id).__name__}")
    try:
        idb = account_id.encode("utf-8")  # pragma: no mutate ("UTF-8": the same codec)
    except UnicodeEncodeError as exc:
        raise MerkleError(account_id, "id", f"not encodable as UTF-8 ({exc.reason})") from None
    if len(idb) > MAX_ID_BYTES:
        raise MerkleError(account_id[:80], "id", "longer than 2**32-1 bytes in UTF-8")
    if not isinstance(nonce, bytes | bytearray | memoryview):
        raise MerkleError(account_id, "nonce", f"must be bytes, got {type(nonce).__name__}")
    if len(bytes(nonce)) != NONCE_LEN:
        raise MerkleError(account_id, "nonce", f"must be 32 bytes, got {len(bytes(nonce))}")
    if isinstance(balances, str | bytes) or not isinstance(balances, Sequence):
        raise MerkleError(account_id, "balances", "must be a sequence of integers")
    if len(balances) != k:
        raise MerkleError(account_id, "balances", f"expected {k} balances, got {len(balances)}")
    for j, b in enumerate(balances):
        if not isinstance(b, int):
            raise MerkleError(account_id, f"balances[{j}]", f"must be int, got {type(b).__name__}")
        if b < 0:
            raise MerkleError(account_id, f"balances[{j}]", f"negative balance {b}")
        if b >= AMOUNT_LIMIT:
            raise MerkleError(account_id, f"balances[{j}]", f"amount {b} out of range (>= 2**128)")
