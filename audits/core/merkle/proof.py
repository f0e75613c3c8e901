"""Verification of ``por-mst-v1`` inclusion proofs (stdlib only, no trust in the issuer)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .format import (
    AMOUNT_LIMIT,
    FORMAT,
    HASH_LEN,
    LEAF_TAG,
    NODE_TAG,
    _sha256,
    account_hash,
)

_DEC = re.compile(r"0|[1-9][0-9]{0,38}")  # canonical decimal; length capped before int()
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_HEIGHT = 64


class _Invalid(Exception):
    pass


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of verify_proof; ``reason`` says why when ``valid`` is False."""

    valid: bool
    reason: str = ""
    snapshot: str = ""
    assets: tuple[tuple[str, int], ...] = ()
    account_id: str | None = None
    balances: tuple[int, ...] = ()
    root_hash: str = ""
    root_sums: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{what} must be an object")
    return value


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise _Invalid(f"{what} must be 64 lowercase hex digits")
    return bytes.fromhex(value)


def _amounts(value: Any, k: int, what: str) -> list[int]:
    if not isinstance(value, list) or len(value) != k:
        raise _Invalid(f"{what} must be a list of {k} decimal strings")
    out = []
    for j, v in enumerate(value):
        if not isinstance(v, str) or not _DEC.fullmatch(v):
            raise _Invalid(f"{what}[{j}] must be a canonical non-negative decimal string")
        n = int(v)
        if n >= AMOUNT_LIMIT:
            raise _Invalid(f"{what}[{j}] out of range (>= 2**128)")
        out.append(n)
    return out


def _check(proof: Any) -> VerifyResult:
    proof = _obj(proof, "proof")
    if proof.get("format") != FORMAT:
        raise _Invalid(f"format must be {FORMAT!r}")
    snapshot = proof.get("snapshot")
    if not isinstance(snapshot, str):
        raise _Invalid("snapshot must be a string")
    assets_in = proof.get("assets")
    if not isinstance(assets_in, list) or not assets_in:
        raise _Invalid("assets must be a non-empty list")
    assets = []
    for j, a in enumerate(assets_in):
        a = _obj(a, f"assets[{j}]")
        code, dec = a.get("code"), a.get("decimals")
        if not isinstance(code, str) or type(dec) is not int or not 0 <= dec <= 255:
            raise _Invalid(f"assets[{j}] needs a string code and integer decimals 0..255")
        assets.append((code, dec))
    k = len(assets)
    root = _obj(proof.get("root"), "root")
    root_hash = _hex32(root.get("hash"), "root.hash")
    root_sums = _amounts(root.get("sums"), k, "root.sums")
    leaf = _obj(proof.get("leaf"), "leaf")
    index = leaf.get("index")
    ah = _hex32(leaf.get("account_hash"), "leaf.account_hash")
    balances = _amounts(leaf.get("balances"), k, "leaf.balances")
    path = proof.get("path")
    if not isinstance(path, list) or len(path) > MAX_HEIGHT:
        raise _Invalid(f"path must be a list of at most {MAX_HEIGHT} siblings")
    if type(index) is not int or not 0 <= index < 1 << len(path):
        raise _Invalid(f"leaf.index must be an integer in [0, 2**{len(path)})")
    account_id = None
    notes: list[str] = []
    if "account" in proof:
        acc = _obj(proof["account"], "account")
        account_id = acc.get("id")
        if not isinstance(account_id, str):
            raise _Invalid("account.id must be a string")
        nonce = _hex32(acc.get("nonce"), "account.nonce")
        try:
            mine = account_hash(account_id, nonce)
        except UnicodeEncodeError:
            raise _Invalid("account.id is not valid UTF-8 text") from None
        if mine != ah:
            raise _Invalid("leaf.account_hash does not match account id and nonce")
    else:
        notes.append("no account section: the leaf is not tied to an account id")
    result = VerifyResult(
        valid=False,  # pragma: no mutate (never returned as is: _fail or the success path set it)
        snapshot=snapshot,
        assets=tuple(assets),
        account_id=account_id,
        balances=tuple(balances),
        root_hash=root_hash.hex(),
        root_sums=tuple(root_sums),
        notes=tuple(notes),
    )
    # Equivalent mutants below: to_bytes() without "big" (the default since Python 3.11).
    enc = [b.to_bytes(16, "big") for b in balances]  # pragma: no mutate
    h = _sha256(LEAF_TAG + ah + b"".join(enc)).digest()
    sums = balances
    for i, sib in enumerate(path):
        sib = _obj(sib, f"path[{i}]")
        sh = _hex32(sib.get("hash"), f"path[{i}].hash")
        ss = _amounts(sib.get("sums"), k, f"path[{i}].sums")
        mine_b = h + b"".join(s.to_bytes(16, "big") for s in sums)  # pragma: no mutate
        theirs = sh + b"".join(s.to_bytes(16, "big") for s in ss)  # pragma: no mutate
        left, right = (theirs, mine_b) if index >> i & 1 else (mine_b, theirs)
        h = _sha256(NODE_TAG + left + right).digest()
        sums = [a + b for a, b in zip(sums, ss, strict=True)]
        if any(s >= AMOUNT_LIMIT for s in sums):
            return _fail(result, f"subtotal at height {i + 1} overflows u128")
    if len(h) != HASH_LEN or h != root_hash:
        return _fail(result, "recomputed root hash differs from root.hash")
    if sums != root_sums:
        return _fail(result, "recomputed root sums differ from root.sums")
    return VerifyResult(**{**result.__dict__, "valid": True})


def _fail(result: VerifyResult, reason: str) -> VerifyResult:
    return VerifyResult(**{**result.__dict__, "valid": False, "reason": reason})


def verify_proof(proof: Any) -> VerifyResult:
    """Check a proof dict (parsed JSON) against its own root; never raises on bad input."""
    try:
        return _check(proof)
    except _Invalid as exc:
        return VerifyResult(valid=False, reason=str(exc))
    except RecursionError:
        return VerifyResult(valid=False, reason="proof nested too deeply")


def format_amount(value: int, decimals: int) -> str:
    """Render an integer amount in smallest units with ``decimals`` applied, exactly."""
    if decimals == 0:
        return str(value)
    whole, frac = divmod(value, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"
