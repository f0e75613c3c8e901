"""The account record stream: the builder's bulk input as bytes, not Python objects.

One record per account, back to back (docs/proof-format.md, "Account record stream")::

    u32be(len(id)) || id (UTF-8) || nonce (32 bytes) || u128be(b_0) || ... || u128be(b_{k-1})

These are the bytes ``account_hash`` and the leaf consume, so a snapshot exported this way
(from a database query, say) is read by the compiled builder without one Python object per
account. ``encode_accounts`` writes it from tuples, checking each account as ``build_tree``
does; ``decode_records`` reads it back into tuples for the pure-Python builder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from .format import AMOUNT_LEN, NONCE_LEN, MerkleError, checked_account, u128

CHUNK_BYTES = 1 << 20  # the size encode_accounts aims its chunks at

T = TypeVar("T")


def as_bytes(chunk: object, index: int) -> bytes:
    """A chunk of the stream as the bytes its buffer holds, whatever the item type.

    Any object with the buffer protocol is taken as raw bytes in C order: an ``array('I')``
    or a ``memoryview`` of wider items is never sliced or counted by item, which would
    misread the stream. The copy (none for ``bytes``) also lets the caller reuse or resize
    its buffer as soon as the next chunk is asked for.
    """
    if type(chunk) is bytes:
        return chunk
    try:
        with memoryview(chunk) as view:  # type: ignore[arg-type]
            return view.tobytes()
    except TypeError:
        raise MerkleError(
            None, "records", f"chunk {index} is {type(chunk).__name__}, not bytes-like"
        ) from None


def take(it: Iterator[T], n: int) -> tuple[list[T], MerkleError | None]:
    """Up to ``n`` items of ``it``, and the MerkleError it raised after them, if any.

    Both builders report the first problem in stream order, so an error from the source (a
    bad record in a stream being decoded) must wait until the accounts before it are checked.
    """
    out: list[T] = []
    try:
        out.extend(islice(it, n))
    except MerkleError as exc:
        return out, exc
    return out, None


def encode_account(acc: Any, k: int) -> bytes:
    """One account's record; raises MerkleError naming the account and field if it is bad."""
    account_id, nonce, balances = checked_account(acc, k)
    idb = account_id.encode("utf-8")
    return b"".join((len(idb).to_bytes(4, "big"), idb, nonce, *(u128(b) for b in balances)))


def encode_accounts(
    accounts: Iterable[Any], k: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The record stream of ``accounts``, in chunks of about ``chunk_bytes``."""
    parts: list[bytes] = []
    size = 0
    for acc in accounts:
        rec = encode_account(acc, k)
        parts.append(rec)
        size += len(rec)
        if size >= chunk_bytes:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def record_error(index: int, field: str, detail: str, idb: bytes | None) -> MerkleError:
    """The error for a bad record; both builders raise exactly this."""
    account = None if idb is None else repr(idb)[:80]
    return MerkleError(account, field, f"{detail} (record {index})")


def truncated(index: int) -> MerkleError:
    """The stream ended inside the record of account ``index`` (0-based)."""
    return record_error(index, "records", "stream ends inside a record", None)


def decode_records(chunks: Iterable[Any], k: int) -> Iterator[tuple[str, bytes, Sequence[int]]]:
    """(account_id, nonce, balances) for each record of the stream, in order."""
    fixed = 4 + NONCE_LEN + AMOUNT_LEN * k
    pending: list[bytes] = []  # a partial record, in pieces, joined once it is complete
    have, need, index = 0, 0, 0
    for number, raw in enumerate(chunks):
        chunk = as_bytes(raw, number)
        pending.append(chunk)
        have += len(chunk)
        if have < need:
            continue
        buf = b"".join(pending)
        pos = 0
        while True:
            need = (
                fixed if len(buf) - pos < 4 else fixed + int.from_bytes(buf[pos : pos + 4], "big")
            )
            end = pos + need
            if end > len(buf):
                break
            idlen = need - fixed
            idb = buf[pos + 4 : pos + 4 + idlen]
            try:
                account_id = idb.decode("utf-8")
            except UnicodeDecodeError:
                raise record_error(index, "id", "not valid UTF-8", idb) from None
            o = pos + 4 + idlen
            nonce = buf[o : o + NONCE_LEN]
            o += NONCE_LEN
            balances = [
                int.from_bytes(buf[p : p + AMOUNT_LEN], "big")
                for p in range(o, o + AMOUNT_LEN * k, AMOUNT_LEN)
            ]
            yield account_id, nonce, balances
            index += 1
            pos = end
        rest = buf[pos:]
        pending, have = ([rest], len(rest)) if rest else ([], 0)
    if have:
        raise truncated(index)
