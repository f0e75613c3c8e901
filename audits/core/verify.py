"""Standalone proof verifier: ``python -m audits.verify PROOF.json``.

Needs only the standard library (plus ``cryptography`` once attestations are checked); it
imports no Django and touches no database. Exit status 0 means VALID, 1 means INVALID.

The proof is written by whoever wants it believed, so nothing read from it may shape the
output: every line starts with a fixed label of ours, every string from the proof is printed
as a JSON string literal (printable ASCII only: no control or bidi characters, no line
breaks, no lone surrogates), and the verdict is the last line. A proof can therefore neither
start a line (a fake ``VALID`` or ``root:``) nor move the terminal's cursor.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from audits.core.merkle.proof import VerifyResult, format_amount, verify_proof


def quoted(text: str) -> str:
    """``text`` as a double-quoted JSON string, printable ASCII only.

    Every character outside space..tilde (controls, DEL, non-ASCII, bidi overrides, line and
    paragraph separators, lone surrogates) becomes a ``\\uXXXX`` escape, as in the proof file
    itself; quotes and backslashes are escaped, so the value's end is unambiguous.
    """
    return json.dumps(text, ensure_ascii=True)


def escaped(text: str) -> str:
    """``text`` (ours, but possibly quoting the proof or a file name) on one printable line."""
    return quoted(text)[1:-1]


def report(result: VerifyResult) -> list[str]:
    """The output lines for one verification result, the verdict last."""
    lines = []
    if result.assets:
        lines.append(f"snapshot: {quoted(result.snapshot)}")
        if result.account_id is not None:
            lines.append(f"account:  {quoted(result.account_id)}")
        # verify_proof gives as many balances and sums as assets, so zip's strict= is never
        # tested: its mutants are equivalent.
        balances = zip(result.assets, result.balances, strict=False)  # pragma: no mutate
        for (code, dec), bal in balances:
            lines.append(f"balance:  {format_amount(bal, dec)} {quoted(code)}")
        lines.append(f"root:     {escaped(result.root_hash)}")  # 64 hex digits, checked
        totals = zip(result.assets, result.root_sums, strict=False)  # pragma: no mutate
        for (code, dec), total in totals:
            lines.append(f"total:    {format_amount(total, dec)} {quoted(code)}")
        lines.extend(f"note:     {escaped(note)}" for note in result.notes)
    lines.append("VALID" if result.valid else f"INVALID: {escaped(result.reason)}")
    return lines


def _verify_file(name: str) -> tuple[bool, list[str]]:
    try:
        # pragma: "UTF-8" is the same codec; the locale default is UTF-8 on every machine the
        # tests run on, and a test cannot change it in process.
        with open(name, encoding="utf-8") as fh:  # pragma: no mutate
            proof = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return False, [f"INVALID: cannot read proof: {escaped(str(exc))}"]
    result = verify_proof(proof)
    return result.valid, report(result)


def main(argv: Sequence[str] | None = None) -> int:
    """Verify one proof file, print a summary and the verdict; return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m audits.verify PROOF.json", file=sys.stderr)
        return 1
    try:
        valid, lines = _verify_file(args[0])
    except Exception as exc:  # a bug of ours must still end in a verdict, not a traceback
        valid = False
        lines = [f"INVALID: verifier error: {escaped(f'{type(exc).__name__}: {exc}')}"]
    try:
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
    except (OSError, ValueError):  # stdout closed early (a pipe into head): nothing to say
        _silence_stdout()
        return 1
    return 0 if valid else 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot print a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
