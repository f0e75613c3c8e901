"""ISO 20022 semt.002 (Securities Balance Custody Report, "custody statement of holdings").

Reads any `urn:iso:std:iso:20022:tech:xsd:semt.002.00{1,2}.NN` version, alone or wrapped in an
envelope next to an AppHdr. Elements are matched by local name so versions that only renumber
types read the same. What is read (paths below SctiesBalCtdyRpt):

- Pgntn: must be page 1 and the last page (a page of a multi-page report is not all holdings).
- StmtGnlDtls/StmtDtTm (or StmtDt) Dt|DtTm: the as-of. A date alone is midnight UTC of that day;
  a DtTm without offset is taken as UTC.
- StmtGnlDtls/UpdTp/Cd: DELT (delta: only changes) is rejected; COMP or absent is fine.
- SfkpgAcct/Id: the account of every line. SubAcctDtls is rejected (not supported yet).
- each BalForAcct: FinInstrmId/ISIN; AggtBal (ShrtLngInd + Qty/.../Unit) is the aggregate;
  BalBrkdwn entries with SubBalTp/Cd PEND (pending delivery) and PENR (pending receipt) are
  securities in transit. settled = aggregate - PEND - PENR; PEND and PENR become their own
  lines. Other sub-balance codes (AWAS, BLOK, PLED, ...) are breakdowns of the aggregate and stay
  in settled. Quantities must be Unit (shares); FaceAmt/AmtsdVal/DgtlTknUnit are rejected.

Security: parsed with defusedxml, DTDs, entity declarations and external references forbidden;
so billion-laughs and XXE documents are rejected before any expansion or file access.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from typing import Any

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import DefusedXMLParser

from .balance_types import PENDING_DELIVERY, PENDING_RECEIPT, SETTLED
from .results import Pagination, ParsedStatement, StatementLine
from .validation import (
    ErrorCollector,
    IsinChecker,
    check_account,
    check_as_of,
    check_duplicates,
    decode_utf8,
    parse_quantity,
    reject,
)

FORMAT = "semt002"
_NS_RE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:semt\.002\.00[12]\.[0-9]+")
_DECLARED_ENCODING_RE = re.compile(r"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
# Sub-balance codes (SecuritiesBalanceType12Code) that are in transit, not settled.
IN_TRANSIT_CODES: dict[str, str] = {"PEND": PENDING_DELIVERY, "PENR": PENDING_RECEIPT}
_QUANTITY_NAMES = frozenset({"Unit", "FaceAmt", "AmtsdVal", "DgtlTknUnit"})


class _Node:
    """Minimal element: local name, namespace, source line, children, text."""

    __slots__ = ("children", "line", "name", "ns", "parts")

    def __init__(self, name: str, ns: str, line: int) -> None:
        self.name = name
        self.ns = ns
        self.line = line
        self.children: list[_Node] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def child(self, name: str) -> _Node | None:
        for c in self.children:
            if c.name == name:
                return c
        return None

    def all(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.name == name]

    def find(self, path: str) -> _Node | None:
        node: _Node | None = self
        for name in path.split("/"):
            node = node.child(name) if node is not None else None
        return node

    def walk(self, path: str = "") -> Iterator[tuple[_Node, str]]:
        """Descendants with their paths relative to this node."""
        for c in self.children:
            p = f"{path}/{c.name}" if path else c.name
            yield c, p
            yield from c.walk(p)


class _Builder:
    """ElementTree parser target that records each element's source line."""

    def __init__(self) -> None:
        self.expat: Any = None  # the pyexpat parser, set once it exists; gives the line
        self.stack: list[_Node] = []
        self.root: _Node | None = None
        self._names: dict[str, tuple[str, str]] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        split = self._names.get(tag)
        if split is None:
            ns, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
            split = self._names[tag] = (ns, name)
        node = _Node(split[1], split[0], self.expat.CurrentLineNumber)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].parts.append(text)

    def close(self) -> _Node | None:
        return self.root


def _parse_xml(text: str) -> _Node:
    builder = _Builder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    builder.expat = parser.parser
    try:
        parser.feed(text)
        root: _Node | None = parser.close()
    except DTDForbidden:
        raise reject(
            "a DTD (<!DOCTYPE ...>) is not allowed in a statement; remove it",
            line=parser.parser.CurrentLineNumber,
        ) from None
    except EntitiesForbidden:
        raise reject(
            "entity declarations are not allowed in a statement",
            line=parser.parser.CurrentLineNumber,
        ) from None
    except DefusedXmlException:
        raise reject(
            "external references are not allowed in a statement",
            line=parser.parser.CurrentLineNumber,
        ) from None
    except SyntaxError as exc:  # ElementTree's ParseError
        line, column = getattr(exc, "position", (None, None))
        raise reject(f"not well-formed XML: {exc.msg} (column {column})", line=line) from None
    if root is None:
        raise reject("empty statement: no XML element")
    return root


def _find_document(root: _Node) -> _Node:
    if root.name == "Document" and _NS_RE.fullmatch(root.ns):
        return root
    if root.name == "Document":
        raise reject(
            f"this is a {root.ns or 'no-namespace'} document, not semt.002 "
            "(expected namespace urn:iso:std:iso:20022:tech:xsd:semt.002.001.NN)",
            line=root.line,
        )
    # An envelope (e.g. RequestPayload holding AppHdr + Document): look a few levels down only.
    level = root.children
    for _ in range(3):
        for node in level:
            if node.name == "Document" and _NS_RE.fullmatch(node.ns):
                return node
        level = [c for node in level for c in node.children]
    raise reject(
        "no semt.002 <Document> element found (namespace "
        "urn:iso:std:iso:20022:tech:xsd:semt.002.001.NN)",
        line=root.line,
    )


def parse_semt002(raw: bytes, as_of: datetime | None = None) -> ParsedStatement:
    """Parse a semt.002 custody statement; `as_of` from the upload must match the file's date."""
    text = decode_utf8(raw)
    if not text.strip():
        raise reject("empty statement: the file is empty")
    declared = _DECLARED_ENCODING_RE.match(text)
    if declared and declared.group(1).lower().replace("-", "") != "utf8":
        raise reject(
            f"the XML declaration says encoding {declared.group(1)!r}; ISO 20022 messages "
            "must be UTF-8",
            line=1,
        )
    document = _find_document(_parse_xml(text))
    report = document.child("SctiesBalCtdyRpt")
    if report is None:
        raise reject("no SctiesBalCtdyRpt element under Document", line=document.line)

    errors = ErrorCollector("line")
    pagination = _check_pagination(report, errors)
    file_as_of, date_only = _statement_date(report, errors)
    update_type = report.find("StmtGnlDtls/UpdTp/Cd")
    if update_type is not None and update_type.text == "DELT":
        errors.add(
            update_type.line,
            "StmtGnlDtls/UpdTp/Cd",
            "this is a delta statement (DELT) listing only changes; send a complete (COMP) "
            "statement of all holdings",
        )
    sub_accounts = report.child("SubAcctDtls")
    if sub_accounts is not None:
        errors.add(
            sub_accounts.line,
            "SubAcctDtls",
            "sub-account details are not supported; send one statement per safekeeping account",
        )
    account = _account(report, errors)

    balances = report.all("BalForAcct")
    if not balances and not errors:
        raise reject("empty statement: no BalForAcct (holding) elements", line=report.line)
    isins = IsinChecker()
    lines: list[StatementLine] = []
    for i, balance in enumerate(balances, start=1):
        lines.extend(_balance_lines(balance, f"BalForAcct[{i}]", account, isins, errors))

    check_duplicates(lines, errors)
    statement_as_of = check_as_of(file_as_of, as_of, errors, date_only=date_only)
    errors.raise_if_any()
    return ParsedStatement(FORMAT, statement_as_of, tuple(lines), pagination)


def _check_pagination(report: _Node, errors: ErrorCollector) -> Pagination | None:
    # Minimal reading for the service's multi-page support (branch issue9-pages); the parsers
    # branch owns the full treatment of Pgntn.
    pagination = report.child("Pgntn")
    if pagination is None:
        return None
    page = pagination.child("PgNb")
    last = pagination.child("LastPgInd")
    page_text = page.text if page is not None else "1"
    if not page_text.isdigit() or int(page_text) < 1 or len(page_text) > 5:
        errors.add(pagination.line, "Pgntn/PgNb", f"{page_text!r} is not a page number")
        return None
    last_text = last.text if last is not None else "true"
    if last_text not in ("true", "false", "1", "0"):
        errors.add(pagination.line, "Pgntn/LastPgInd", f"{last_text!r} is not true or false")
        return None
    stmt_id = report.find("StmtGnlDtls/StmtId")
    result = Pagination(
        stmt_id.text if stmt_id is not None and stmt_id.text else None,
        int(page_text),
        last_text in ("true", "1"),
    )
    if result.statement_id is None and not result.single:
        errors.add(
            pagination.line,
            "StmtGnlDtls/StmtId",
            "a page of a multi-page statement needs the statement id that joins its pages",
        )
    return result


def _statement_date(report: _Node, errors: ErrorCollector) -> tuple[datetime | None, bool]:
    details = report.child("StmtGnlDtls")
    when = None
    if details is not None:
        when = details.child("StmtDtTm") or details.child("StmtDt")
    if when is None:
        line = details.line if details is not None else report.line
        errors.add(line, "StmtGnlDtls/StmtDtTm", "the statement date is missing")
        return None, False
    field = f"StmtGnlDtls/{when.name}"
    if (dt := when.child("DtTm")) is not None:
        try:
            parsed = datetime.fromisoformat(dt.text)
        except ValueError:
            errors.add(dt.line, f"{field}/DtTm", f"{dt.text!r} is not an ISO date-time")
            return None, False
        # ISODateTime without an offset: taken as UTC (documented; custodians mostly send Z).
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), False
    if (d := when.child("Dt")) is not None:
        try:
            day = date.fromisoformat(d.text)
        except ValueError:
            errors.add(d.line, f"{field}/Dt", f"{d.text!r} is not an ISO date (YYYY-MM-DD)")
            return None, False
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    errors.add(when.line, field, "expected a Dt or DtTm element")
    return None, False


def _account(report: _Node, errors: ErrorCollector) -> str | None:
    node = report.find("SfkpgAcct/Id")
    if node is None:
        errors.add(report.line, "SfkpgAcct/Id", "the safekeeping account is missing")
        return None
    account, problem = check_account(node.text)
    if problem:
        errors.add(node.line, "SfkpgAcct/Id", problem)
    return account


def _balance_lines(
    balance: _Node, path: str, account: str | None, isins: IsinChecker, errors: ErrorCollector
) -> list[StatementLine]:
    ok = True
    isin: str | None = None
    isin_node = balance.find("FinInstrmId/ISIN")
    if isin_node is None:
        errors.add(
            balance.line,
            f"{path}/FinInstrmId/ISIN",
            "ISIN is missing; holdings must be identified by ISIN",
        )
        ok = False
    else:
        isin, problem = isins.check(isin_node.text)
        if problem:
            errors.add(isin_node.line, f"{path}/FinInstrmId/ISIN", problem)
            ok = False

    aggregate_node = balance.child("AggtBal")
    aggregate = None
    if aggregate_node is None:
        errors.add(balance.line, f"{path}/AggtBal", "the aggregate balance is missing")
    else:
        aggregate = _quantity(aggregate_node, f"{path}/AggtBal", errors)

    in_transit: dict[str, Decimal] = {}
    for j, breakdown in enumerate(balance.all("BalBrkdwn"), start=1):
        bpath = f"{path}/BalBrkdwn[{j}]"
        code_node = breakdown.find("SubBalTp/Cd")
        if code_node is None:
            continue  # proprietary sub-balance type: informational, stays in settled
        balance_type = IN_TRANSIT_CODES.get(code_node.text)
        if balance_type is None:
            continue  # AWAS, BLOK, ...: a breakdown of the aggregate, still held
        qty_node = breakdown.child("Qty")
        if qty_node is None:
            errors.add(breakdown.line, f"{bpath}/Qty", "the sub-balance quantity is missing")
            ok = False
            continue
        quantity = _quantity(qty_node, f"{bpath}/Qty", errors)
        if quantity is None:
            ok = False
            continue
        in_transit[balance_type] = in_transit.get(balance_type, Decimal(0)) + quantity

    if not ok or aggregate is None or account is None or isin is None:
        return []
    assert aggregate_node is not None
    # Quantities can have 38 significant digits; the default 28-digit context would round.
    with localcontext() as ctx:
        ctx.prec = 80
        pending_total = sum(in_transit.values(), Decimal(0))
        settled = aggregate - pending_total
    if settled < 0:
        errors.add(
            aggregate_node.line,
            f"{path}/BalBrkdwn",
            f"the PEND/PENR sub-balances ({pending_total}) exceed the aggregate balance "
            f"({aggregate}); sub-balances must be a breakdown of the aggregate",
        )
        return []
    lines = [StatementLine(balance.line, isin, settled, account, SETTLED)]
    for balance_type in (PENDING_RECEIPT, PENDING_DELIVERY):
        if balance_type in in_transit:
            lines.append(
                StatementLine(balance.line, isin, in_transit[balance_type], account, balance_type)
            )
    return lines


def _quantity(balance: _Node, path: str, errors: ErrorCollector) -> Decimal | None:
    """Quantity of a Balance (AggtBal or BalBrkdwn/Qty): ShrtLngInd + Qty/.../Unit."""
    indicator = balance.child("ShrtLngInd")
    if indicator is not None and indicator.text == "SHOR":
        errors.add(
            indicator.line,
            f"{path}/ShrtLngInd",
            "a short position (SHOR) is not a holding; reserves must be long",
        )
        return None
    qty = balance.child("Qty")
    found = [(n, p) for n, p in qty.walk() if n.name in _QUANTITY_NAMES] if qty else []
    if not found:
        line = qty.line if qty is not None else balance.line
        errors.add(line, f"{path}/Qty", "no quantity in Unit (number of shares) found")
        return None
    if len(found) > 1:
        errors.add(found[1][0].line, f"{path}/Qty", "more than one quantity given")
        return None
    node, rel = found[0]
    field = f"{path}/Qty/{rel}"
    if node.name != "Unit":
        errors.add(
            node.line,
            field,
            f"{node.name} quantities are not accepted; report the number of shares as Unit",
        )
        return None
    quantity, problem = parse_quantity(node.text)
    if problem:
        errors.add(node.line, field, problem)
    return quantity
