"""JSON statements, validated against statement.schema.json (JSON Schema draft 2020-12).

Nesting: a statement is three levels deep (object, holdings list, holding object). Python's
decoder recurses once per level and, depending on the thread's C stack and the recursion limit,
can crash the process on a deep enough document rather than raise; so the text's nesting is
measured first, without recursion and without decoding (_nested_deeper_than), and a document
deeper than MAX_JSON_DEPTH is rejected before the decoder or anything else recursive sees it.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from itertools import accumulate
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from .balance_types import BALANCE_TYPES
from .results import ParsedStatement, StatementLine
from .validation import (
    ErrorCollector,
    IsinChecker,
    check_account,
    check_as_of,
    check_balance_type,
    check_duplicates,
    decode_utf8,
    parse_quantity,
    reject,
)

FORMAT = "json"
# Three levels are needed; the rest is room for a clear schema error on a wrong shape.
MAX_JSON_DEPTH = 20
_TOO_DEEP = (
    f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep (a statement needs 3: the "
    "object, the holdings list, each holding); this is not a statement of holdings"
)
_ESCAPE_RE = re.compile(r"\\.", re.DOTALL)
_NOT_BRACKETS_RE = re.compile(r"[^\[\]{}]+")
_INNERMOST_PAIRS_RE = re.compile(r"\[\]|\{\}")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema custodians validate against (also served in the docs)."""
    text = resources.files(__package__).joinpath("statement.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    """(validator for the document minus the holding items, validator for one holding).

    jsonschema costs ~40 us a holding, 4 s at 100,000; so holdings are checked with
    _plainly_valid first and only the ones it does not vouch for go through jsonschema.
    """
    full = schema()
    Draft202012Validator.check_schema(full)
    outer = copy.deepcopy(full)
    del outer["properties"]["holdings"]["items"]
    return Draft202012Validator(outer), Draft202012Validator(full["$defs"]["holding"])


_HOLDING_KEYS = frozenset({"isin", "quantity", "account", "balance_type"})
_BALANCE_TYPES = frozenset(BALANCE_TYPES)


def _plainly_valid(holding: object) -> bool:
    """A fast check that implies the holding schema accepts the holding (tested to)."""
    return (
        type(holding) is dict
        and holding.keys() == _HOLDING_KEYS
        and all(type(v) is str for v in holding.values())
        and 1 <= len(holding["account"]) <= 64
        and holding["balance_type"] in _BALANCE_TYPES
    )


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated keys silently; two "quantity"s are ambiguous.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes, as_of: datetime | None = None) -> ParsedStatement:
    """Parse a JSON statement; `as_of`, if given with the upload, must match the file's."""
    text = decode_utf8(raw, line_is_text_line=False)
    if not text.strip():
        raise reject("empty statement: the file is empty")
    if _nested_deeper_than(text, MAX_JSON_DEPTH):
        raise reject(_TOO_DEEP)
    try:
        # parse_float=Decimal: nothing goes through float, even fields we later reject.
        doc = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicate_keys,
        )
    except _DuplicateKey as exc:
        raise reject(f"key {exc.args[0]!r} appears twice in the same object") from None
    except json.JSONDecodeError as exc:
        # LineError.line means holding number for JSON, so the text position is in the message.
        raise reject(
            f"not valid JSON at text line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise reject(f"not valid JSON: {exc}") from None

    errors = ErrorCollector("holding")
    # JSON paths the schema already complained about: not reported or checked again.
    flagged: set[str] = set()
    outer, holding_validator = _validators()
    for error in outer.iter_errors(doc):
        _add_schema_error(list(error.absolute_path), error, errors, flagged)

    holdings = doc.get("holdings") if isinstance(doc, dict) else None
    if isinstance(holdings, list):
        for i, holding in enumerate(holdings):
            if not _plainly_valid(holding):
                for error in holding_validator.iter_errors(holding):
                    parts = ["holdings", i, *error.absolute_path]
                    _add_schema_error(parts, error, errors, flagged)
    if isinstance(holdings, list) and not holdings and not errors:
        raise reject("empty statement: holdings is an empty list")

    file_as_of = None
    if isinstance(doc, dict) and isinstance(doc.get("as_of"), str):
        file_as_of = _parse_as_of(doc["as_of"], errors)

    isins = IsinChecker()
    lines: list[StatementLine] = []
    for index, holding in enumerate(holdings if isinstance(holdings, list) else [], start=1):
        if not isinstance(holding, dict):
            continue  # reported by the schema
        line = _check_holding(index, holding, isins, errors, flagged)
        if line is not None:
            lines.append(line)

    check_duplicates(lines, errors, unit="holding")
    statement_as_of = check_as_of(file_as_of, as_of, errors)
    errors.raise_if_any()
    return ParsedStatement(FORMAT, statement_as_of, tuple(lines))


def _nested_deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON `text` nests arrays and objects more than `limit` deep.

    No recursion and no decoding: strings are cut out (a bracket in a string is not nesting),
    then innermost []/{} pairs are removed one level per round. Valid JSON of depth d is empty
    after d rounds. Otherwise the text is invalid or deeper than `limit`, and the exact running
    depth decides which; for invalid JSON it counts at least the levels the decoder would
    enter before reaching its first error (both read the text alike up to there), so the
    decoder never goes deeper than `limit`.
    """
    # Escapes out first (left to right, as the decoder reads them; outside a string a
    # backslash is already an error): then every '"' opens or closes a string and a split
    # is an exact, linear cut. A regex matching whole strings instead is quadratic on
    # unterminated ones.
    unescaped = _ESCAPE_RE.sub("", text) if "\\" in text else text
    outside = "".join(unescaped.split('"')[0::2])
    brackets = _NOT_BRACKETS_RE.sub("", outside)
    remaining = brackets
    for _ in range(limit):
        if not remaining:
            return False
        remaining = _INNERMOST_PAIRS_RE.sub("", remaining)
    if not remaining:
        return False
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > limit


def _check_holding(
    index: int,
    holding: dict[str, Any],
    isins: IsinChecker,
    errors: ErrorCollector,
    flagged: set[str],
) -> StatementLine | None:
    path = f"$.holdings[{index - 1}]"
    values: dict[str, Any] = {}
    ok = True
    for name in ("isin", "quantity", "account", "balance_type"):
        value = holding.get(name)
        if f"{path}.{name}" in flagged or not isinstance(value, str):
            ok = False  # the schema has reported it (missing, or not a string)
            continue
        if name == "isin":
            values[name], problem = isins.check(value)
        elif name == "quantity":
            values[name], problem = parse_quantity(value)
        elif name == "account":
            values[name], problem = check_account(value)
        else:
            values[name], problem = value, check_balance_type(value)
        if problem:
            errors.add(index, f"{path}.{name}", problem)
            ok = False
    if not ok:
        return None
    return StatementLine(
        index, values["isin"], values["quantity"], values["account"], values["balance_type"]
    )


def _parse_as_of(value: str, errors: ErrorCollector) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or "T" not in value.upper():
        errors.add(None, "$.as_of", f"{value!r} is not a date-time like 2026-11-24T21:00:00Z")
        return None
    if parsed.tzinfo is None:
        errors.add(None, "$.as_of", f"{value!r} has no UTC offset; add one, e.g. Z or +01:00")
        return None
    return parsed


def _json_path(parts: list[str | int]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _add_schema_error(
    parts: list[str | int], error: ValidationError, errors: ErrorCollector, flagged: set[str]
) -> None:
    index: int | None = None
    if len(parts) >= 2 and parts[0] == "holdings" and isinstance(parts[1], int):
        index = parts[1] + 1
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        # jsonschema reports each missing property once per "required" error, all in one go.
        for name in error.validator_value:
            field = _json_path([*parts, name])
            if name not in instance and field not in flagged:
                flagged.add(field)
                errors.add(index, field, f"{name} is missing")
        return
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = error.schema.get("properties", {})
        for name in instance:
            if name not in allowed:
                errors.add(index, _json_path([*parts, name]), f"unknown field {name!r}")
        return
    if error.validator == "minItems" and parts == ["holdings"]:
        errors.add(None, "$.holdings", "empty statement: holdings is an empty list")
        return
    field = _json_path(parts)
    if field in flagged:
        return
    flagged.add(field)
    problem = error.message
    if parts and parts[-1] == "quantity" and error.validator == "type":
        if isinstance(instance, int | Decimal) and not isinstance(instance, bool):
            problem = (
                f'quantity must be a string such as "{instance}", not a JSON number '
                "(JSON numbers lose precision in many encoders)"
            )
        else:
            problem = 'quantity must be a string such as "1500"'
    elif error.validator == "enum" and parts and parts[-1] == "balance_type":
        problem = check_balance_type(str(instance)) or problem
    errors.add(index, field, problem)
