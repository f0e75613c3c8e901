"""Standalone offline verifier for proofs and signed attestations.

``python -m audits.verify PROOF.json`` checks a liability proof;
``python -m audits.verify BUNDLE.json --attestation ENVELOPE.json --keys JWKS.json
[--previous PREV.json]`` checks a user's proof bundle against a signed attestation;
``python -m audits.verify --attestation ENVELOPE.json --keys JWKS.json [--previous PREV.json]
[--evidence FILE ...]`` checks a signed attestation, its key, its chain link and evidence files.

Needs only the standard library and ``cryptography``; it imports no Django and touches no
database. Exit status 0 means VALID, 1 means INVALID.

The proof is written by whoever wants it believed, so nothing read from it may shape the
output: every line starts with a fixed label of ours, every string from the proof is printed
as a JSON string literal (printable ASCII only: no control or bidi characters, no line
breaks, no lone surrogates), and the verdict is the last line. A proof can therefore neither
start a line (a fake ``VALID`` or ``root:``) nor move the terminal's cursor.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from audits.core.attestation import AttestationInvalid, Verified, subject_names_for, verify
from audits.core.bundle import BundleInvalid, check_attested, check_bundle, plain_amount
from audits.core.merkle.proof import VerifyResult, format_amount, verify_proof

PROOF_USAGE = "usage: python -m audits.verify PROOF.json"
BUNDLE_USAGE = (
    "usage: python -m audits.verify BUNDLE.json --attestation ENVELOPE.json --keys JWKS.json"
    " [--previous PREV.json]"
)
ATTESTATION_USAGE = (
    "usage: python -m audits.verify --attestation ENVELOPE.json --keys JWKS.json"
    " [--previous PREV.json] [--evidence FILE ...]"
)


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


class UsageError(Exception):
    """Bad arguments; the message is the usage line of the mode the user was reaching for."""


def parse_attestation_args(args: list[str]) -> dict[str, Any]:
    """The attestation options, by hand: argparse would exit 2 and accept abbreviations."""
    opts: dict[str, Any] = {"attestation": None, "keys": None, "previous": None, "evidence": []}
    i = 0
    while i < len(args):
        name, value = args[i], args[i + 1] if i + 1 < len(args) else None
        if name not in ("--attestation", "--keys", "--previous", "--evidence") or value is None:
            raise UsageError(ATTESTATION_USAGE)
        key = name[2:]
        if key == "evidence":
            opts["evidence"].append(value)
            # --evidence takes one or more files: every following non-option argument.
            i += 2
            while i < len(args) and not args[i].startswith("--"):
                opts["evidence"].append(args[i])
                i += 1
            continue
        if opts[key] is not None:
            raise UsageError(ATTESTATION_USAGE)
        opts[key] = value
        i += 2
    if opts["attestation"] is None or opts["keys"] is None:
        raise UsageError(ATTESTATION_USAGE)
    return opts


def _read_json(name: str, what: str) -> Any:
    try:
        with open(name, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AttestationInvalid(f"cannot read {what}: {exc}") from None


def _file_digest(name: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                digest.update(block)
    except OSError as exc:
        raise AttestationInvalid(f"cannot read evidence: {exc}") from None
    return digest.hexdigest()


LIABILITY_FIELDS = ("snapshot", "as_of", "root_hash", "root_sum_units", "leaf_count", "tree_sha256")


def _text(value: Any) -> str:
    """A predicate value for display: strings quoted, anything else as JSON, all escaped."""
    if isinstance(value, str):
        return quoted(value)
    return escaped(json.dumps(value, ensure_ascii=True, sort_keys=True))


def _verified_attestation(opts: dict[str, Any]) -> Verified:
    """The --attestation envelope verified against --keys (and --previous, if given)."""
    envelope = _read_json(opts["attestation"], "attestation")
    jwks = _read_json(opts["keys"], "keys")
    previous = None
    if opts["previous"] is not None:
        previous = _read_json(opts["previous"], "previous attestation")
    return verify(envelope, jwks, previous=previous)


def attestation_report(opts: dict[str, Any]) -> tuple[bool, list[str]]:
    """Verify an attestation; the lines describe only what verified, the verdict last.

    Nothing from an envelope is shown unless its signature, key and chain checks all passed:
    an unverified attestation's figures are not worth printing.
    """
    try:
        result = _verified_attestation(opts)
        evidence = [(name, _file_digest(name)) for name in opts["evidence"]]
    except AttestationInvalid as exc:
        return False, [f"INVALID: {escaped(exc.reason)}"]
    predicate = result.statement["predicate"]
    lines = [
        f"attestation: sequence {predicate['sequence']}, issued {escaped(predicate['issued_at'])}",
        f"key: {quoted(result.keyid)}",
    ]
    assets = predicate.get("assets")
    for asset in assets if isinstance(assets, list) else []:
        if not isinstance(asset, dict):
            continue
        shown = [f"asset: {_text(asset.get('code'))}"]
        for field in ("status", "eligible", "ratio", "reserves", "supply"):
            if field in asset:
                shown.append(f"{field} {_text(asset[field])}")
        liabilities = asset.get("liabilities")
        if isinstance(liabilities, dict):
            shown.append(f"liabilities {_text(liabilities.get('root_sum'))}")
        lines.append(" ".join(shown))
        if isinstance(liabilities, dict):
            # The tree the reserves were measured against: what a user's proof must reach.
            lines.append(
                " ".join(
                    [f"liabilities: {_text(asset.get('code'))}"]
                    + [
                        f"{field} {_text(liabilities[field])}"
                        for field in LIABILITY_FIELDS
                        if field in liabilities
                    ]
                )
            )
    prev = predicate["previous"]
    if prev is None:
        lines.append("previous: none (first)")
    elif opts["previous"] is not None:
        lines.append(f"previous: {prev} (checked)")  # sha256:<64 hex>, checked by verify
    else:
        lines.append(f"previous: {prev} (not checked: give --previous)")
    for name, digest in evidence:
        names = subject_names_for(result.statement, digest)
        if not names:
            lines.append(f"evidence: {quoted(name)} sha256:{digest} is no subject")
            lines.append(f"INVALID: evidence {quoted(name)} is not a subject")
            return False, lines
        lines.extend(
            f"evidence: {quoted(name)} sha256:{digest} is subject {quoted(subject)}"
            for subject in names
        )
    lines.append("VALID")
    return True, lines


def parse_bundle_args(args: list[str]) -> dict[str, Any]:
    """BUNDLE.json, then the attestation options (no evidence files: the bundle is the file)."""
    try:
        opts = parse_attestation_args(args[1:])
    except UsageError:
        raise UsageError(BUNDLE_USAGE) from None
    if opts["evidence"]:
        raise UsageError(BUNDLE_USAGE)
    return {**opts, "bundle": args[0]}


def bundle_report(opts: dict[str, Any]) -> tuple[bool, list[str]]:
    """Verify a proof bundle: every proof recomputed from the account block, the attestation
    verified, and every root the one it attests for the bundle's snapshot.

    Balances are shown only once their proof recomputed; "included" lines only once the
    attestation verified and named their root.
    """
    lines: list[str] = []
    try:
        bundle = _read_json(opts["bundle"], "bundle")
    except AttestationInvalid as exc:
        return False, [f"INVALID: {escaped(exc.reason)}"]
    try:
        snapshot_id, account_id, checked = check_bundle(bundle)
    except BundleInvalid as exc:
        return False, [f"INVALID: {escaped(exc.reason)}"]
    lines.append(f"snapshot: {quoted(snapshot_id)}")
    lines.append(f"account:  {quoted(account_id)}")
    for proof in checked:
        r = proof.result
        for (code, dec), bal in zip(r.assets, r.balances, strict=True):
            lines.append(f"balance:  {format_amount(bal, dec)} {quoted(code)} (proof recomputed)")
    try:
        verified = _verified_attestation(opts)
    except AttestationInvalid as exc:
        lines.append(f"INVALID: attestation: {escaped(exc.reason)}")
        return False, lines
    predicate = verified.statement["predicate"]
    lines.append(
        f"attestation: sequence {predicate['sequence']}, issued {escaped(predicate['issued_at'])}"
        f", key {quoted(verified.keyid)}"
    )
    try:
        included = check_attested(snapshot_id, checked, predicate)
    except BundleInvalid as exc:
        lines.append(f"INVALID: {escaped(exc.reason)}")
        return False, lines
    for item in included:
        lines.append(
            f"included: {plain_amount(item.balance, item.decimals)} {quoted(item.code)} in total"
            f" liabilities of {plain_amount(item.total, item.decimals)} {quoted(item.code)}"
            f" (root {item.root_hash})"
        )
    lines.append("VALID")
    return True, lines


def _run(args: list[str]) -> tuple[bool, list[str]]:
    if args and isinstance(args[0], str) and args[0].startswith("--"):
        return attestation_report(parse_attestation_args(args))
    if len(args) > 1 and isinstance(args[1], str) and args[1].startswith("--"):
        return bundle_report(parse_bundle_args(args))
    if len(args) != 1:
        raise UsageError(PROOF_USAGE)
    return _verify_file(args[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Verify one proof or attestation, print a summary and the verdict; return the status."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        valid, lines = _run(args)
    except UsageError as usage:
        print(usage, file=sys.stderr)
        return 1
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
