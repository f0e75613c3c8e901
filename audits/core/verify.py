"""Standalone proof verifier: ``python -m audits.verify PROOF.json``.

Needs only the standard library (plus ``cryptography`` once attestations are checked); it
imports no Django and touches no database. Exit status 0 means VALID, 1 means INVALID.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from audits.core.merkle.proof import format_amount, verify_proof


def main(argv: Sequence[str] | None = None) -> int:
    """Verify one proof file, print a summary and the verdict; return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m audits.verify PROOF.json", file=sys.stderr)
        return 1
    try:
        with open(args[0], encoding="utf-8") as fh:
            proof = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        print(f"INVALID: cannot read proof: {exc}")
        return 1
    result = verify_proof(proof)
    if result.assets:
        print(f"snapshot: {result.snapshot}")
        if result.account_id is not None:
            print(f"account:  {result.account_id}")
        for (code, dec), bal in zip(result.assets, result.balances, strict=False):
            print(f"balance:  {format_amount(bal, dec)} {code}")
        print(f"root:     {result.root_hash}")
        for (code, dec), total in zip(result.assets, result.root_sums, strict=False):
            print(f"total:    {format_amount(total, dec)} {code}")
        for note in result.notes:
            print(f"note:     {note}")
    print("VALID" if result.valid else f"INVALID: {result.reason}")
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
