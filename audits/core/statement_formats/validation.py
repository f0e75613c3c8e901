"""Field checks and error collection shared by the format parsers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from stdnum import isin as stdnum_isin
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from .balance_types import BALANCE_TYPES
from .results import LineError, StatementLine, StatementRejected

# Listing more than this many errors helps nobody; the rest are counted, not listed.
MAX_ERRORS = 1000

# Sanity bounds on a quantity as written. The service applies the per-asset decimal limit.
MAX_INTEGER_DIGITS = 20
MAX_FRACTION_DIGITS = 18
MAX_ACCOUNT_LENGTH = 64

# Plain decimal only: no exponent, no thousands separator, no sign other than a leading '-'
# (accepted by the pattern so a negative number gets "negative" rather than "not a number").
_QUANTITY_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_ISIN_SHAPE_RE = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CHAR_DIGITS = {c: str(i) for i, c in enumerate(_ALPHABET)}
# Luhn: the sum of the digits of 2*d.
_DOUBLED = {str(d): (2 * d) // 10 + (2 * d) % 10 for d in range(10)}
_PLAIN = {str(d): d for d in range(10)}
_COUNTRY_CODES = frozenset(stdnum_isin._country_codes)


class ErrorCollector:
    """Collects LineErrors, keeping the first MAX_ERRORS and counting the rest."""

    def __init__(self, unit: str = "line") -> None:
        # "line" for CSV/XML, "holding" for JSON: the word used in messages before the number.
        self.unit = unit
        self.errors: list[LineError] = []
        self.omitted = 0

    def __bool__(self) -> bool:
        return bool(self.errors)

    def add(self, line: int | None, field: str | None, problem: str) -> None:
        """Record one problem; the message is built to name the line and field."""
        if len(self.errors) >= MAX_ERRORS:
            self.omitted += 1
            return
        where = f"{self.unit} {line}" if line is not None else "file"
        if field:
            where += f", field {field}"
        self.errors.append(LineError(line, field, f"{where}: {problem}"))

    def raise_if_any(self) -> None:
        """Raise StatementRejected listing the errors (file-level ones first, then by line)."""
        if self.errors:
            # Equivalent mutant: any key below 1 (lines count from 1), e.g. -2, sorts the same.
            # pragma: no mutate start
            ordered = sorted(self.errors, key=lambda e: -1 if e.line is None else e.line)
            # pragma: no mutate end
            raise StatementRejected(ordered, self.omitted)


def reject(problem: str, line: int | None = None, field: str | None = None) -> StatementRejected:
    """A StatementRejected carrying a single error, for problems that stop parsing."""
    errors = ErrorCollector()
    errors.add(line, field, problem)
    return StatementRejected(errors.errors)


def decode_utf8(raw: bytes, line_is_text_line: bool = True) -> str:
    """Decode strict UTF-8 (a leading BOM is dropped); reject with the byte offset and line.

    With `line_is_text_line` False (JSON, where LineError.line is a holding number) the text
    line goes into the message only.
    """
    try:
        text = raw.decode("utf-8")  # pragma: no mutate ("UTF-8" is the same codec)
    except UnicodeDecodeError as exc:
        # Equivalent mutant: count(b"\n", None, ...) starts at 0 too.
        line = raw.count(b"\n", 0, exc.start) + 1  # pragma: no mutate
        hint = ""
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = " (the file looks like UTF-16)"
        raise reject(
            f"file is not valid UTF-8{hint}: byte 0x{raw[exc.start]:02X} at byte offset "
            f"{exc.start} (text line {line}) cannot be decoded; save the file as UTF-8",
            line=line if line_is_text_line else None,
        ) from None
    return text.removeprefix("\ufeff")


def _check_digit(body: str) -> str:
    digits = "".join([_CHAR_DIGITS[c] for c in body])[::-1]
    total = sum([_DOUBLED[d] for d in digits[0::2]]) + sum([_PLAIN[d] for d in digits[1::2]])
    return str((10 - total % 10) % 10)


class IsinChecker:
    """Validates ISINs with a per-statement memo (statements repeat ISINs across accounts)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str | None, str | None]] = {}

    def check(self, value: str) -> tuple[str | None, str | None]:
        """Return (canonical ISIN, None) or (None, problem)."""
        hit = self._seen.get(value)  # pragma: no mutate (a memo: a miss only recomputes)
        if hit is None:
            hit = self._seen[value] = _check_isin(value)
        return hit


def _check_isin(value: str) -> tuple[str | None, str | None]:
    candidate = value.strip().upper()
    # Fast path for the common case: same rules as stdnum.isin.validate, a few times faster,
    # which matters at 100,000 lines with distinct ISINs.
    if (
        _ISIN_SHAPE_RE.fullmatch(candidate)
        # [:2] -> [:3] only sends every ISIN down the stdnum path: an equivalent mutant.
        and candidate[:2] in _COUNTRY_CODES  # pragma: no mutate
        and _check_digit(candidate[:11]) == candidate[11]
    ):
        return candidate, None
    if not value.strip():
        return None, "ISIN is missing"
    try:
        return stdnum_isin.validate(value), None
    except InvalidLength:
        n = len(stdnum_isin.compact(value))
        return None, f"ISIN {value!r} has the wrong length: {n} characters, an ISIN has 12"
    except InvalidFormat:
        return None, f"ISIN {value!r} has characters other than letters A-Z and digits 0-9"
    except InvalidComponent:
        return None, f"ISIN {value!r} starts with {candidate[:2]!r}, not a known country code"
    except InvalidChecksum:
        compact = stdnum_isin.compact(value)
        expected = stdnum_isin.calc_check_digit(compact[:11])
        return None, (
            f"ISIN {value!r} has a wrong check digit: the last character should be "
            f"{expected!r} (a typo in the ISIN?)"
        )


def parse_quantity(text: str) -> tuple[Decimal | None, str | None]:
    """Parse a plain decimal quantity; return (quantity, None) or (None, problem)."""
    value = text.strip()
    m = _QUANTITY_RE.fullmatch(value)
    if m is None:
        if not value:
            return None, "quantity is missing"
        # Decimal() would accept NaN, Infinity, 1E3 and ' 1_000 '; none of those is a holding.
        return None, (
            f"quantity {value!r} is not a plain decimal number (digits, optionally a '.' "
            "and more digits; no exponent, sign, thousands separator, NaN or Infinity)"
        )
    sign, integer, fraction = m.groups()
    if len(integer) > MAX_INTEGER_DIGITS and len(integer.lstrip("0")) > MAX_INTEGER_DIGITS:
        return None, f"quantity {value!r} has more than {MAX_INTEGER_DIGITS} integer digits"
    if fraction and len(fraction) > MAX_FRACTION_DIGITS:
        return None, f"quantity {value!r} has more than {MAX_FRACTION_DIGITS} decimal places"
    quantity = Decimal(value)
    if sign:
        if quantity:
            return None, f"quantity {value!r} is negative; a holding cannot be below zero"
        quantity = abs(quantity)  # "-0" is zero
    return quantity, None


def check_account(value: str) -> tuple[str | None, str | None]:
    """Return (stripped account, None) or (None, problem)."""
    account = value.strip()
    if not account:
        return None, "account is missing"
    if len(account) > MAX_ACCOUNT_LENGTH:
        return None, f"account is longer than {MAX_ACCOUNT_LENGTH} characters"
    if not account.isprintable():
        return None, f"account {account!r} contains control characters"
    return account, None


def check_balance_type(value: str) -> str | None:
    """Return the problem with a balance type, or None if it is one of BALANCE_TYPES."""
    if value in BALANCE_TYPES:
        return None
    if not value.strip():
        return "balance_type is missing"
    return f"balance_type {value!r} is unknown; use one of {', '.join(BALANCE_TYPES)}"


def check_duplicates(
    lines: Iterable[StatementLine], errors: ErrorCollector, unit: str = "line"
) -> None:
    """Reject two lines for the same isin+account+balance_type, agreeing or not.

    Exact duplicates are rejected too: adding them would double-count, and keeping one would
    silently hide an export bug on the custodian's side.
    """
    first: dict[tuple[str, str, str], StatementLine] = {}
    for line in lines:
        key = (line.isin, line.account, line.balance_type)
        earlier = first.get(key)
        if earlier is None:
            first[key] = line
            continue
        what = f"{line.isin} in account {line.account!r} ({line.balance_type})"
        if earlier.quantity == line.quantity:
            problem = (
                f"duplicate of {unit} {earlier.line_no}: {what} is listed twice with the same "
                f"quantity {line.quantity}; list each holding once"
            )
        else:
            problem = (
                f"conflicts with {unit} {earlier.line_no}: {what} is listed with quantity "
                f"{earlier.quantity} there and {line.quantity} here"
            )
        errors.add(line.line_no, "isin", problem)


def check_as_of(
    file_as_of: datetime | None,
    upload_as_of: datetime | None,
    errors: ErrorCollector,
    date_only: bool = False,
) -> datetime | None:
    """Pick the statement's as-of: the file's if it has one, else the upload's; flag a mismatch.

    `date_only` means the file only gave a date (file_as_of is midnight UTC of it): an upload
    as-of on that UTC date agrees and, being more precise, is the one kept.
    """
    if upload_as_of is not None and upload_as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if file_as_of is None:
        return upload_as_of
    if date_only and upload_as_of is not None:
        if upload_as_of.astimezone(UTC).date() == file_as_of.date():
            return upload_as_of
        errors.add(
            None,
            "as_of",
            f"the statement is dated {file_as_of.date().isoformat()} but the upload gives "
            f"{upload_as_of.isoformat()}; they must agree",
        )
        return file_as_of
    if upload_as_of is not None and upload_as_of != file_as_of:
        errors.add(
            None,
            "as_of",
            f"the statement is dated {file_as_of.isoformat()} but the upload gives "
            f"{upload_as_of.isoformat()}; they must agree",
        )
    return file_as_of


def decimal_places(q: Decimal) -> int:
    """Decimal places of `q` ignoring trailing zeros: 10.500 -> 1, 100 -> 0, 1E+2 -> 0."""
    if not q.is_finite():
        raise ValueError(f"{q} is not a finite number")
    _sign, digits, exponent = q.as_tuple()
    assert isinstance(exponent, int)  # finite, so never 'n'/'N'/'F'
    # Equivalent mutants: `> 0` / `>= 1` (exponent 0 also gives 0 below, trailing >= 0).
    if exponent >= 0 or not any(digits):  # pragma: no mutate
        return 0
    # Counted on the digit tuple rather than via normalize(), which rounds to the context's
    # precision (28 digits) and would be wrong for long quantities.
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-exponent - trailing, 0)
