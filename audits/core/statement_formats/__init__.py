"""Framework-free parsers for custodian statements of holdings.

Every format parser returns the same normalised ParsedStatement or raises StatementRejected with
every problem found (capped at MAX_ERRORS). No Django here: the audits service wires this in.
"""

from __future__ import annotations

from datetime import datetime

from .balance_types import (
    BALANCE_TYPE_CHOICES,
    BALANCE_TYPES,
    PENDING_DELIVERY,
    PENDING_RECEIPT,
    RESERVE_BALANCE_TYPES,
    SETTLED,
)
from .csv_format import parse_csv
from .json_format import parse_json, schema
from .results import LineError, Pagination, ParsedStatement, StatementLine, StatementRejected
from .semt002 import parse_semt002
from .validation import MAX_ERRORS, decimal_places

_PARSERS = {"csv": parse_csv, "json": parse_json, "semt002": parse_semt002}
FORMATS: tuple[str, ...] = tuple(_PARSERS)


def parse_statement(fmt: str, raw: bytes, as_of: datetime | None = None) -> ParsedStatement:
    """Parse and validate `raw` in format `fmt` (one of FORMATS).

    `as_of` is the as-of sent with the upload (timezone-aware); CSV takes it as is, JSON and
    semt.002 carry their own date, which it must agree with if both are given. Raises
    StatementRejected for anything wrong with the file, ValueError for an unknown `fmt`.
    """
    try:
        parser = _PARSERS[fmt]
    except KeyError:
        raise ValueError(f"unknown statement format {fmt!r}; expected one of {FORMATS}") from None
    return parser(bytes(raw), as_of)


__all__ = [
    "BALANCE_TYPES",
    "BALANCE_TYPE_CHOICES",
    "FORMATS",
    "MAX_ERRORS",
    "PENDING_DELIVERY",
    "PENDING_RECEIPT",
    "RESERVE_BALANCE_TYPES",
    "SETTLED",
    "LineError",
    "Pagination",
    "ParsedStatement",
    "StatementLine",
    "StatementRejected",
    "decimal_places",
    "parse_csv",
    "parse_json",
    "parse_semt002",
    "parse_statement",
    "schema",
]
