"""Liability snapshot files: users' balances as CSV, checked whole and split into one account
record stream per asset (the Merkle builder's input), framework-free.

The file (docs/liabilities.md, "Snapshot file")::

    account_id,asset,balance
    u-1001,AAPLx,12.5
    u-1001,MSFTx,3

UTF-8 (a leading byte-order mark is skipped), LF or CRLF line ends, that exact header, then
one row per account and asset; no quoting. ``balance`` is a plain decimal in whole tokens,
converted exactly to the asset's smallest unit: more decimals than the asset has is an error,
never a rounding. Every bad row is reported with its line number and field; a file with any
error is rejected whole by the caller, so nothing is built from it.

Each account's nonce is derived, not stored: ``HMAC-SHA256(snapshot_secret, account_id)``
(``nonce_for``). ``split_reference`` is the reference implementation; the compiled
``Splitter`` in ``audits/core/merkle/_mstnative.c``, when built, gives the same records and
errors (tests/liabilities hold the two to it on random files and chunkings) without a Python
object per row. ``split_snapshot`` and ``split_chunks`` use it when it is there.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from audits.core.merkle.format import AMOUNT_LEN

try:
    from audits.core.merkle import _mstnative as _c  # type: ignore[attr-defined]
except ImportError:  # not compiled here: the reference runs
    _c = None

HEADER = b"account_id,asset,balance"
BOM = b"\xef\xbb\xbf"
MAX_ACCOUNT_ID_BYTES = 128
MAX_LINE_BYTES = 4096
MAX_ERRORS = 1000
MAX_AMOUNT = (1 << (8 * AMOUNT_LEN)) - 1
SECRET_BYTES = 32
SHOW_BYTES = 64  # of an unknown asset code, quoted in its error

_BALANCE = re.compile(rb"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
# C0 controls, DEL and C1 controls: never part of an account id (invisible, and a terminal
# or a spreadsheet would show them differently from what was hashed).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class Split:
    """What ``split_snapshot`` found: rows read, per-asset record counts and totals (smallest
    units), and the errors (the first ``MAX_ERRORS``, and how many in all)."""

    rows: int = 0
    accounts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def add_error(self, line: int, field_: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(line, field_, message))

    @property
    def ok(self) -> bool:
        return self.error_count == 0


def nonce_for(secret: bytes, account_id: str) -> bytes:
    """The account's 32-byte nonce in the snapshot whose secret is ``secret``."""
    return hmac.new(secret, account_id.encode("utf-8"), hashlib.sha256).digest()


def parse_balance(text: bytes, decimals: int) -> int:
    """``text`` (whole tokens, plain decimal) in smallest units; ValueError saying why."""
    if text.startswith(b"-"):
        raise ValueError("negative balance")
    match = _BALANCE.fullmatch(text)
    if match is None:
        raise ValueError("not a plain decimal number (digits, optionally one '.')")
    whole, fraction = match.group(1), match.group(2) or b""
    if len(fraction) > decimals:
        raise ValueError(f"more than {decimals} decimal places")
    value = int(whole + fraction.ljust(decimals, b"0"))
    if value > MAX_AMOUNT:
        raise ValueError("too large")
    return value


def _account_id(raw: bytes) -> str:
    if not raw.strip():
        raise ValueError("blank")
    if len(raw) > MAX_ACCOUNT_ID_BYTES:
        raise ValueError(f"longer than {MAX_ACCOUNT_ID_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    if _CONTROL.search(text):
        raise ValueError("contains a control character")
    if text != text.strip():
        raise ValueError("has spaces around it")
    return text


def _record(account_id: str, nonce: bytes, amount: int) -> bytes:
    idb = account_id.encode("utf-8")
    return len(idb).to_bytes(4, "big") + idb + nonce + amount.to_bytes(AMOUNT_LEN, "big")


def quote_code(raw: bytes) -> str:
    """An unknown asset code as its error quotes it: printable ASCII as is, ``\\``, ``\\'``
    and ``\\xhh`` for anything else, at most ``SHOW_BYTES`` bytes (then its length), so that
    no byte of the file reaches a message unescaped."""
    out = []
    for b in raw[:SHOW_BYTES]:
        if b in (0x5C, 0x27):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    shown = "'" + "".join(out) + "'"
    return shown if len(raw) <= SHOW_BYTES else f"{shown}... ({len(raw)} bytes)"


def lines_of(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines (each with its ``\\n``, the last perhaps without) of the bytes ``chunks``
    make when joined: lines may span chunks, and a chunk may hold many."""
    parts: list[bytes] = []
    for chunk in chunks:
        start = 0
        while (nl := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start : nl + 1]
            if parts:
                parts.append(piece)
                yield b"".join(parts)
                parts = []
            else:
                yield piece
            start = nl + 1
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts:
        yield b"".join(parts)


def split_snapshot(
    lines: Iterable[bytes],
    decimals: Mapping[str, int],
    secret: bytes,
    sinks: Mapping[str, BinaryIO],
) -> Split:
    """Read the snapshot's ``lines``, check every row, and write each good row's account
    record (k = 1) to its asset's sink; the compiled splitter when built, else the reference.

    ``lines`` are bytes as a binary file iterates them; any pieces whose concatenation is the
    file give the same result (see ``split_chunks``, which is the same function). The rest is
    as ``split_reference``.
    """
    return split_chunks(lines, decimals, secret, sinks)


def native_available() -> bool:
    """True when the compiled splitter can be imported."""
    return _c is not None and hasattr(_c, "Splitter")


def split_chunks(
    chunks: Iterable[bytes],
    decimals: Mapping[str, int],
    secret: bytes,
    sinks: Mapping[str, BinaryIO],
    progress: Callable[[int], object] | None = None,
) -> Split:
    """``split_snapshot`` over the file's bytes in ``chunks`` of any size, cut anywhere (the
    service reads 1 MiB at a time). ``progress(bytes_read)``, if given, is called after each
    chunk. Same result as ``split_reference``, which runs when the compiled splitter is not
    built (or for decimals it does not take); the compiled one raises ValueError for a file
    of more than 2**32 - 2 lines (its duplicate table keeps line numbers in 32 bits)."""
    if len(secret) < 16:
        raise ValueError("snapshot secret too short")
    counted = _counting(chunks, progress) if progress is not None else chunks
    codes = list(decimals)
    places = [decimals[c] for c in codes]
    if not native_available() or not all(type(d) is int and 0 <= d <= 1000 for d in places):
        return split_reference(lines_of(counted), decimals, secret, sinks)
    splitter: Any = _c.Splitter(  # type: ignore[union-attr]
        codes, places, secret, MAX_LINE_BYTES, MAX_ACCOUNT_ID_BYTES, MAX_ERRORS
    )
    for chunk in counted:
        _write(sinks, codes, splitter.feed(chunk))
    records, rows, accounts, totals, errors, error_count = splitter.finish()
    _write(sinks, codes, records)
    return Split(
        rows=rows,
        accounts=dict(zip(codes, accounts, strict=True)),
        totals=dict(zip(codes, totals, strict=True)),
        errors=[RowError(*e) for e in errors],
        error_count=error_count,
    )


def _write(sinks: Mapping[str, BinaryIO], codes: list[str], records: list[bytes]) -> None:
    for code, data in zip(codes, records, strict=True):
        if data:
            sinks[code].write(data)


def _counting(chunks: Iterable[bytes], progress: Callable[[int], object]) -> Iterator[bytes]:
    read = 0
    for chunk in chunks:
        yield chunk
        read += len(chunk)
        progress(read)


def split_reference(
    lines: Iterable[bytes],
    decimals: Mapping[str, int],
    secret: bytes,
    sinks: Mapping[str, BinaryIO],
) -> Split:
    """The reference: read the snapshot's ``lines`` (bytes, each ending in ``\\n`` but perhaps
    the last, as a binary file iterates them), check every row, and write each good row's
    account record (k = 1) to its asset's sink.

    ``decimals`` maps each asset code the snapshot may name to its decimals; ``sinks`` has a
    writable binary file per code. The caller must discard the sinks if the result is not
    ``ok``; records stop being written at the first error.

    Line 1 (after a UTF-8 byte-order mark, if any) must be the header. A line longer than
    ``MAX_LINE_BYTES`` (counting its line end) is one error and is not looked into (nor
    counted in ``rows``). Then, per row: an empty line, a ``"`` anywhere, or other than three
    fields is one error for the line. Otherwise the account id is checked (blank, longer than
    ``MAX_ACCOUNT_ID_BYTES``, not UTF-8, a C0/DEL/C1 control character, Unicode whitespace
    around it: the first problem found), and independently the asset (an unknown code, matched
    on its exact bytes) or, for a known asset, the balance; so a row may have two errors, the
    account id's first. A good row whose (account id, asset) came before is an error naming
    the first line (ids are compared by the first 16 bytes of their nonces); then a row that
    would take its asset's total past ``MAX_AMOUNT`` (the tree's root sum could not hold it)
    is an error, and not counted. Errors are in line order; the first ``MAX_ERRORS`` are kept
    and all are counted. A file without lines, or with a header and no rows, is an error too.
    """
    if len(secret) < 16:
        raise ValueError("snapshot secret too short")
    result = Split(accounts={c: 0 for c in decimals}, totals={c: 0 for c in decimals})
    by_bytes = {c.encode("utf-8"): c for c in decimals}
    seen: dict[str, dict[bytes, int]] = {c: {} for c in decimals}
    number = 0
    for number, line in enumerate(lines, start=1):
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        if len(line) > MAX_LINE_BYTES:
            result.add_error(number, "line", f"longer than {MAX_LINE_BYTES} bytes")
            continue
        body = line.rstrip(b"\n")
        body = body[:-1] if body.endswith(b"\r") else body
        if number == 1:
            if body != HEADER:
                result.add_error(1, "header", f"expected {HEADER.decode()}")
            continue
        result.rows += 1
        if not body:
            result.add_error(number, "line", "empty line")
            continue
        if b'"' in body:
            result.add_error(number, "line", "quoted fields are not supported")
            continue
        cells = body.split(b",")
        if len(cells) != 3:
            result.add_error(number, "line", f"expected 3 fields, found {len(cells)}")
            continue
        raw_id, raw_asset, raw_balance = cells
        try:
            account_id = _account_id(raw_id)
        except ValueError as exc:
            result.add_error(number, "account_id", str(exc))
            account_id = None
        code = by_bytes.get(raw_asset)
        if code is None:
            result.add_error(number, "asset", f"unknown asset {quote_code(raw_asset)}")
            continue
        try:
            amount = parse_balance(raw_balance, decimals[code])
        except ValueError as exc:
            result.add_error(number, "balance", str(exc))
            continue
        if account_id is None:
            continue
        nonce = nonce_for(secret, account_id)
        # A keyed 128-bit digest of the id, so 16 bytes a row, not the id, are kept.
        first = seen[code].setdefault(nonce[:16], number)
        if first != number:
            result.add_error(number, "account_id", f"duplicate of line {first} for {code}")
            continue
        if result.totals[code] + amount > MAX_AMOUNT:  # the tree's root sum has 16 bytes
            result.add_error(number, "balance", f"takes the {code} total past 2**128 - 1 units")
            continue
        if result.ok:  # once the file is rejected, stop writing what will be discarded
            sinks[code].write(_record(account_id, nonce, amount))
        result.accounts[code] += 1
        result.totals[code] += amount
    if number == 0:
        result.add_error(1, "header", f"empty file; expected {HEADER.decode()}")
    elif number == 1 and result.ok:
        result.add_error(2, "line", "no rows: a snapshot with no accounts is stated, not uploaded")
    return result
