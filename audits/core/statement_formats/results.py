"""Normalised result and error types shared by every statement format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One holding: `quantity` of `isin` in `account`, with its balance type.

    `line_no` is where the holding is in the source: the physical line for CSV, the 1-based
    holding index for JSON, the source line of the `<BalForAcct>` or `<BalForSubAcct>` element
    for semt.002 (one such element can yield up to three lines: settled, pending receipt,
    pending delivery).
    """

    line_no: int
    isin: str
    quantity: Decimal
    account: str
    balance_type: str


@dataclass(frozen=True, slots=True)
class Pagination:
    """Where one message sits in a statement sent as several messages (semt.002 `Pgntn`).

    `statement_id` (`StmtGnlDtls/StmtId`) joins the pages of one statement; it may be None
    only for a statement complete in one message (page 1, last page). `page` is 1-based.
    """

    statement_id: str | None
    page: int
    last: bool

    @property
    def single(self) -> bool:
        """True when this one message is the whole statement."""
        return self.page == 1 and self.last


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    """A statement (or one page of one) that passed every format-level check.

    `pagination` is None for formats without pages (CSV, JSON): the file is the whole
    statement. A page's `lines` are only that page's holdings; the service joins the pages.
    """

    format: str
    as_of: datetime | None
    lines: tuple[StatementLine, ...]
    pagination: Pagination | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    """One problem in an uploaded statement.

    `line` is the CSV line, the JSON holding number (1-based) or the XML source line; None for
    problems with the file as a whole. `field` is the column, JSON path or XML element path.
    `message` is a complete sentence that itself names the line and field, so it can be shown
    on its own.
    """

    line: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, int | str | None]:
        """JSON-ready form for API error responses."""
        return {"line": self.line, "field": self.field, "message": self.message}


class StatementRejected(Exception):
    """The statement failed validation; `errors` lists every problem found (capped)."""

    def __init__(self, errors: list[LineError], omitted: int = 0) -> None:
        self.errors = list(errors)
        # How many further errors were found but not listed (the list is capped).
        self.omitted = omitted
        super().__init__(self.report())

    def report(self) -> str:
        """Human-readable report, one error per line."""
        lines = [e.message for e in self.errors]
        if self.omitted:
            lines.append(f"... and {self.omitted} more errors")
        return "\n".join(lines)

    def as_dicts(self) -> list[dict[str, int | str | None]]:
        """JSON-ready list of errors; the cap notice, if any, is the last entry."""
        out = [e.as_dict() for e in self.errors]
        if self.omitted:
            out.append(
                {"line": None, "field": None, "message": f"... and {self.omitted} more errors"}
            )
        return out
