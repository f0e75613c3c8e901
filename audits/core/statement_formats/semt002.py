"""ISO 20022 semt.002 (Securities Balance Custody Report, "custody statement of holdings").

Reads any `urn:iso:std:iso:20022:tech:xsd:semt.002.00{1,2}.NN` version, alone or wrapped in an
envelope next to an AppHdr; the elements read are checked against semt.002.001.10 and .11.
Elements are matched by local name so versions that only renumber types read the same. What is
read (paths below SctiesBalCtdyRpt; docs/statement-formats.md is the custodian-facing version):

- Pgntn/PgNb, Pgntn/LastPgInd (both mandatory) and StmtGnlDtls/StmtId: where this message sits
  in a statement sent as several pages (ParsedStatement.pagination). StmtId is required unless
  the message is page 1 and the last page.
- StmtGnlDtls/StmtDtTm (or StmtDt) Dt|DtTm: the as-of. A date alone is midnight UTC of that day;
  a DtTm without offset is taken as UTC.
- StmtGnlDtls/UpdTp/Cd must be COMP and StmtGnlDtls/StmtBsis/Cd must be SETT: a delta, a
  trade-date or contractual basis, or a proprietary code, is refused (not read with certainty).
- StmtGnlDtls/SubAcctInd says where the holdings are: false, at account level (SfkpgAcct/Id,
  BalForAcct); true, per sub-account (SubAcctDtls/SfkpgAcct/Id, BalForSubAcct). With true, an
  account-level BalForAcct is the total of the sub-accounts: checked against them, never added.
- each balance: FinInstrmId/ISIN; AggtBal (ShrtLngInd, mandatory, + Qty/.../Unit) is what the
  account holds now on a settled basis, and is the settled line as it stands. BalBrkdwn entries
  with SubBalTp/Cd PEND (pending delivery: still held, so inside the aggregate) and PENR
  (pending receipt: not yet arrived, so outside it) become lines of their own; they are never
  added to or subtracted from the settled figure here. Other sub-balances and AddtlBalBrkdwn are
  classifications of the aggregate and are ignored. Quantities must be Unit (shares).

Security: parsed with defusedxml, DTDs, entity declarations and external references forbidden;
so billion-laughs and XXE documents are rejected before any expansion or file access. Elements
nested deeper than MAX_XML_DEPTH stop the parse at once (the tree is built without recursion
and never deeper than that), so no document can exhaust the stack.
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
# A semt.002 statement nests about 12 levels (envelope included); SplmtryData may hold any
# XML, so the limit leaves room, and stops hostile nesting long before it costs anything.
MAX_XML_DEPTH = 50
_NS_RE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:semt\.002\.00[12]\.[0-9]+")
_DECLARED_ENCODING_RE = re.compile(r"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
# Sub-balance codes (SecuritiesBalanceType12Code) read as their own pending figures.
IN_TRANSIT_CODES: dict[str, str] = {"PEND": PENDING_DELIVERY, "PENR": PENDING_RECEIPT}
_QUANTITY_NAMES = frozenset({"Unit", "FaceAmt", "AmtsdVal", "DgtlTknUnit"})
# Pgntn/PgNb is Max5NumericText; zero-padding ("00002") is common.
_PAGE_RE = re.compile(r"[0-9]{1,5}")
# xs:boolean lexical forms.
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
MAX_STATEMENT_ID_LENGTH = 35  # Max35Text
# StatementBasis1Code values other than SETT, and why each is refused.
_REFUSED_BASES = {
    "TRAD": (
        "this is a trade-date basis (TRAD) statement: its balances count trades that have "
        "not settled; send a settled-basis (SETT) statement"
    ),
    "CONT": (
        "this is a contractual settlement date basis (CONT) statement: its balances count "
        "trades due to settle as if they had settled; send a settled-basis (SETT) statement"
    ),
}


class _TooDeep(Exception):
    """Raised from inside the XML parser when elements nest deeper than MAX_XML_DEPTH."""


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

    def walk(self) -> Iterator[tuple[_Node, str]]:
        """Descendants in document order with their paths relative to this node."""
        # An explicit stack rather than recursion, so depth never meets the interpreter's limit.
        stack = [(c, c.name) for c in reversed(self.children)]
        while stack:
            node, path = stack.pop()
            yield node, path
            stack.extend((c, f"{path}/{c.name}") for c in reversed(node.children))


class _Builder:
    """ElementTree parser target that records each element's source line."""

    def __init__(self) -> None:
        self.expat: Any = None  # the pyexpat parser, set once it exists; gives the line
        self.stack: list[_Node] = []
        self.root: _Node | None = None
        self._names: dict[str, tuple[str, str]] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_XML_DEPTH:
            raise _TooDeep
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
    except _TooDeep:
        raise reject(
            f"elements are nested more than {MAX_XML_DEPTH} levels deep (a semt.002 statement "
            "needs about 12); this is not a statement of holdings",
            line=parser.parser.CurrentLineNumber,
        ) from None
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
    """Parse one semt.002 message; `as_of` from the upload must match the file's date.

    A message that is one page of several is returned like any other, with its `pagination`
    saying which page of which statement it is; its lines are that page's holdings only.
    """
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
    details = report.child("StmtGnlDtls")
    if details is None:
        errors.add(report.line, "StmtGnlDtls", "the statement general details are missing")
    pagination = _pagination(report, details, errors)
    file_as_of, date_only = _statement_date(report, errors)
    if details is not None:
        _check_update_type(details, errors)
        _check_basis(details, errors)
    by_sub_account = _sub_account_indicator(details, errors) if details is not None else None
    account = _account(report, errors)

    isins = IsinChecker()
    account_lines: list[StatementLine] = []
    for i, balance in enumerate(report.all("BalForAcct"), start=1):
        account_lines.extend(_balance_lines(balance, f"BalForAcct[{i}]", account, isins, errors))
    sub_lines = _sub_account_lines(report, isins, errors)

    lines: list[StatementLine] = []
    if by_sub_account is True:
        lines = sub_lines
        if account_lines:
            _check_totals(account_lines, sub_lines, errors)
    elif by_sub_account is False:
        lines = account_lines
        listed = [b for sub in report.all("SubAcctDtls") for b in sub.all("BalForSubAcct")]
        if listed:
            errors.add(
                listed[0].line,
                "StmtGnlDtls/SubAcctInd",
                "SubAcctInd is false (no sub-account holdings) but SubAcctDtls lists "
                "balances; set SubAcctInd to true or report the holdings at account level",
            )

    single = pagination is not None and pagination.single
    if not lines and not errors and single:
        raise reject(
            "empty statement: no BalForAcct (holding) elements, nor SubAcctDtls/BalForSubAcct",
            line=report.line,
        )
    check_duplicates(lines, errors)
    statement_as_of = check_as_of(file_as_of, as_of, errors, date_only=date_only)
    errors.raise_if_any()
    return ParsedStatement(FORMAT, statement_as_of, tuple(lines), pagination)


def _pagination(report: _Node, details: _Node | None, errors: ErrorCollector) -> Pagination | None:
    node = report.child("Pgntn")
    if node is None:
        errors.add(
            report.line,
            "Pgntn",
            "the pagination (Pgntn with PgNb and LastPgInd) is missing; it is mandatory, "
            "PgNb 1 and LastPgInd true for a statement in one message",
        )
        return None
    page: int | None = None
    page_node = node.child("PgNb")
    if page_node is None:
        errors.add(node.line, "Pgntn/PgNb", "the page number is missing")
    elif not _PAGE_RE.fullmatch(page_node.text) or int(page_node.text) == 0:
        errors.add(
            page_node.line,
            "Pgntn/PgNb",
            f"page number {page_node.text!r} is not a positive whole number of at most 5 "
            "digits (leading zeros are fine)",
        )
    else:
        page = int(page_node.text)
    last: bool | None = None
    last_node = node.child("LastPgInd")
    if last_node is None:
        errors.add(node.line, "Pgntn/LastPgInd", "the last-page indicator is missing")
    elif (last := _BOOLEANS.get(last_node.text)) is None:
        errors.add(
            last_node.line,
            "Pgntn/LastPgInd",
            f"{last_node.text!r} is not true, false, 1 or 0",
        )
    statement_id = None
    id_node = details.child("StmtId") if details is not None else None
    if id_node is not None:
        statement_id = id_node.text
        if not statement_id or len(statement_id) > MAX_STATEMENT_ID_LENGTH:
            errors.add(
                id_node.line,
                "StmtGnlDtls/StmtId",
                f"the statement id must be 1 to {MAX_STATEMENT_ID_LENGTH} characters",
            )
            statement_id = None
        elif not statement_id.isprintable():
            errors.add(
                id_node.line, "StmtGnlDtls/StmtId", "the statement id has control characters"
            )
            statement_id = None
    if page is None or last is None:
        return None
    pagination = Pagination(statement_id, page, last)
    if id_node is None and not pagination.single:
        errors.add(
            details.line if details is not None else node.line,
            "StmtGnlDtls/StmtId",
            f"this is page {page} of a statement sent in several messages "
            f"({'the last page' if last else 'more pages follow'}) but it has no statement id; "
            "the pages of one statement are joined by StmtGnlDtls/StmtId",
        )
    return pagination


def _statement_date(report: _Node, errors: ErrorCollector) -> tuple[datetime | None, bool]:
    details = report.child("StmtGnlDtls")
    if details is None:
        return None, False  # reported once, as the missing StmtGnlDtls
    when = details.child("StmtDtTm") or details.child("StmtDt")
    if when is None:
        errors.add(details.line, "StmtGnlDtls/StmtDtTm", "the statement date is missing")
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


def _code(details: _Node, name: str, errors: ErrorCollector, what: str) -> tuple[_Node, str] | None:
    """The (node, text) of StmtGnlDtls/<name>/Cd; a missing element or a Prtry is reported."""
    node = details.child(name)
    if node is None:
        errors.add(
            details.line,
            f"StmtGnlDtls/{name}",
            f"the {what} is missing; it is a mandatory element of semt.002",
        )
        return None
    code = node.child("Cd")
    if code is None:
        proprietary = node.child("Prtry") is not None
        errors.add(
            node.line,
            f"StmtGnlDtls/{name}/{'Prtry' if proprietary else 'Cd'}",
            f"a proprietary {what} cannot be read with certainty; use the ISO code"
            if proprietary
            else f"the {what} code is missing",
        )
        return None
    return code, code.text


def _check_update_type(details: _Node, errors: ErrorCollector) -> None:
    found = _code(details, "UpdTp", errors, "update type")
    if found is None:
        return
    node, code = found
    if code == "COMP":
        return
    problem = (
        "this is a delta statement (DELT) listing only changes; send a complete (COMP) "
        "statement of all holdings"
        if code == "DELT"
        else f"update type {code!r} is not COMP (a complete statement of all holdings)"
    )
    errors.add(node.line, "StmtGnlDtls/UpdTp/Cd", problem)


def _check_basis(details: _Node, errors: ErrorCollector) -> None:
    found = _code(details, "StmtBsis", errors, "statement basis")
    if found is None:
        return
    node, code = found
    if code == "SETT":
        return
    problem = _REFUSED_BASES.get(code) or (
        f"statement basis {code!r} is not supported; send a settled-basis (SETT) statement"
    )
    errors.add(node.line, "StmtGnlDtls/StmtBsis/Cd", problem)


def _sub_account_indicator(details: _Node, errors: ErrorCollector) -> bool | None:
    node = details.child("SubAcctInd")
    if node is None:
        errors.add(
            details.line,
            "StmtGnlDtls/SubAcctInd",
            "the sub-account indicator is missing; it is mandatory (false: holdings at "
            "account level, true: holdings per sub-account)",
        )
        return None
    value = _BOOLEANS.get(node.text)
    if value is None:
        errors.add(node.line, "StmtGnlDtls/SubAcctInd", f"{node.text!r} is not true, false, 1 or 0")
    return value


def _account(report: _Node, errors: ErrorCollector) -> str | None:
    node = report.find("SfkpgAcct/Id")
    if node is None:
        errors.add(report.line, "SfkpgAcct/Id", "the safekeeping account is missing")
        return None
    account, problem = check_account(node.text)
    if problem:
        errors.add(node.line, "SfkpgAcct/Id", problem)
    return account


def _sub_account_lines(
    report: _Node, isins: IsinChecker, errors: ErrorCollector
) -> list[StatementLine]:
    lines: list[StatementLine] = []
    for i, sub in enumerate(report.all("SubAcctDtls"), start=1):
        path = f"SubAcctDtls[{i}]"
        account: str | None = None
        node = sub.find("SfkpgAcct/Id")
        if node is None:
            errors.add(
                sub.line,
                f"{path}/SfkpgAcct/Id",
                "the sub-account's safekeeping account id is missing",
            )
        else:
            account, problem = check_account(node.text)
            if problem:
                errors.add(node.line, f"{path}/SfkpgAcct/Id", problem)
        for j, balance in enumerate(sub.all("BalForSubAcct"), start=1):
            lines.extend(
                _balance_lines(balance, f"{path}/BalForSubAcct[{j}]", account, isins, errors)
            )
    return lines


def _check_totals(
    account_lines: list[StatementLine], sub_lines: list[StatementLine], errors: ErrorCollector
) -> None:
    """Account-level balances beside sub-account ones must be their totals (never added)."""
    with localcontext() as ctx:
        ctx.prec = 80  # sums of 38-digit quantities stay exact
        totals: dict[tuple[str, str], Decimal] = {}
        for line in sub_lines:
            key = (line.isin, line.balance_type)
            totals[key] = totals.get(key, Decimal(0)) + line.quantity
        at_account: dict[tuple[str, str], StatementLine] = {}
        for line in account_lines:
            at_account.setdefault((line.isin, line.balance_type), line)
    first_sub: dict[str, int] = {}
    for line in sub_lines:
        first_sub.setdefault(line.isin, line.line_no)
    for key in sorted(set(totals) | set(at_account)):
        isin, balance_type = key
        total = totals.get(key, Decimal(0))
        reported = at_account.get(key)
        if reported is not None and reported.quantity == total:
            continue
        line_no = reported.line_no if reported is not None else first_sub[isin]
        errors.add(
            line_no,
            "BalForAcct",
            f"SubAcctInd is true, so the account-level {balance_type} balance of {isin} must "
            f"be the total of its sub-accounts: it is "
            f"{reported.quantity if reported is not None else 'not given'}, the sub-accounts "
            f"add up to {total}",
        )


def _balance_lines(
    balance: _Node, path: str, account: str | None, isins: IsinChecker, errors: ErrorCollector
) -> list[StatementLine]:
    """The settled line (AggtBal as it stands) and any PEND/PENR lines of one balance."""
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
        aggregate = _quantity(aggregate_node, f"{path}/AggtBal", errors, indicator_required=True)

    pending: dict[str, Decimal] = {}
    for j, breakdown in enumerate(balance.all("BalBrkdwn"), start=1):
        bpath = f"{path}/BalBrkdwn[{j}]"
        kind = breakdown.child("SubBalTp")
        if kind is None:
            errors.add(breakdown.line, f"{bpath}/SubBalTp", "the sub-balance type is missing")
            ok = False
            continue
        code_node = kind.child("Cd")
        balance_type = IN_TRANSIT_CODES.get(code_node.text) if code_node is not None else None
        if balance_type is None:
            continue  # AWAS, BLOK, a Prtry type, ...: a classification of the aggregate
        assert code_node is not None
        if balance_type in pending:
            errors.add(
                code_node.line,
                f"{bpath}/SubBalTp/Cd",
                f"a second {code_node.text} sub-balance for the same holding; give each once",
            )
            ok = False
            continue
        qty_node = breakdown.child("Qty")
        if qty_node is None:
            errors.add(breakdown.line, f"{bpath}/Qty", "the sub-balance quantity is missing")
            ok = False
            continue
        quantity = _quantity(qty_node, f"{bpath}/Qty", errors, indicator_required=False)
        if quantity is None:
            ok = False
            continue
        pending[balance_type] = quantity

    if not ok or aggregate is None or account is None or isin is None:
        return []
    lines = [StatementLine(balance.line, isin, aggregate, account, SETTLED)]
    for balance_type in (PENDING_RECEIPT, PENDING_DELIVERY):
        if balance_type in pending:
            lines.append(
                StatementLine(balance.line, isin, pending[balance_type], account, balance_type)
            )
    return lines


def _quantity(
    balance: _Node, path: str, errors: ErrorCollector, indicator_required: bool
) -> Decimal | None:
    """Quantity of a Balance (AggtBal or BalBrkdwn/Qty): ShrtLngInd + Qty/.../Unit."""
    indicator = balance.child("ShrtLngInd")
    if indicator is None and indicator_required:
        errors.add(
            balance.line,
            f"{path}/ShrtLngInd",
            "the short/long indicator is missing; it is mandatory (LONG for a holding)",
        )
        return None
    if indicator is not None and indicator.text != "LONG":
        reason = (
            "a short position (SHOR) is not a holding; reserves must be long"
            if indicator.text == "SHOR"
            else f"{indicator.text!r} is not LONG or SHOR"
        )
        errors.add(indicator.line, f"{path}/ShrtLngInd", reason)
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
