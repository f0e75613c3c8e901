"""Model fields shared by several models."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact
from functools import lru_cache
from typing import Any

from django.db import models

# Extra digits a sum read through the field may have (a billion billion values).
_SUM_ROOM = 20


@lru_cache(maxsize=64)
def _context(precision: int, exact: bool) -> Context:
    # Shared, never changed after this: quantize only sets flags on it, which nothing reads.
    context = Context(prec=precision)
    if exact:
        context.traps[Inexact] = True
    return context


@lru_cache(maxsize=64)
def _exponent(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


class ExactDecimalField(models.DecimalField):
    """A DecimalField that keeps every digit on every database, or refuses the value.

    SQLite has no exact decimal type: its NUMERIC affinity turns long numbers into 8-byte
    floats and Django's SQLite converter rounds to 15 significant digits
    (``12345678901234567890.123456`` comes back as ``12345678901234600000``). A scaled integer
    does not fit either: 38 digits (a statement quantity) or 78 (a uint256 supply) exceed
    SQLite's 64-bit INTEGER. So on SQLite the column is TEXT holding the canonical plain
    decimal (always ``decimal_places`` places, so equal values are equal strings); on
    PostgreSQL it is an ordinary ``numeric(p, s)``, exact, and SUM and ORDER BY work in SQL.
    Values always come back as exact ``Decimal`` with ``decimal_places`` places.

    On SQLite, text does not sort or add up as numbers: compare and sum in Python there (see
    ``statements.holdings_summary``), never with SQL aggregates or ordering.

    A value with more digits than the field holds is refused, never rounded.
    """

    def get_internal_type(self) -> str:
        # Not "DecimalField": that would route SQLite values through the float converter.
        return "TextField"

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return f"numeric({self.max_digits}, {self.decimal_places})"

    def _quantized(self, value: Decimal, *, exact: bool = False) -> Decimal:
        # Writing: no rounding and at most max_digits digits, else InvalidOperation or Inexact
        # is raised. Reading: a stored value always fits, and a SUM over the column (output
        # through this field) may have more integer digits than one value: leave room.
        digits = self.max_digits or 28
        context = _context(digits if exact else digits + _SUM_ROOM, exact)
        return value.quantize(_exponent(self.decimal_places or 0), context=context)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared and not isinstance(value, Decimal):
            value = self.get_prep_value(value)
        if value is None:
            return None
        value = self._quantized(Decimal(value), exact=True)
        return format(value, "f") if connection.vendor == "sqlite" else value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        if value is None:
            return None
        return self._quantized(Decimal(value))
