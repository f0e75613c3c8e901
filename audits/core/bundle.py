"""A user's proof bundle (``por-bundle-v1``, docs/proof-format.md) checked against a signed
attestation: framework-free, stdlib only.

Two steps, so a caller can check the proofs before it has an attestation:

* ``check_bundle(bundle)`` recomputes every proof from the bundle's account block (the id and
  nonce the platform handed the user) and gives the checked proofs;
* ``check_attested(checked, predicate)`` compares each proof's root with the liabilities the
  attestation's predicate names for that asset and snapshot.

Both raise ``BundleInvalid`` with the reason of the first failed check. The browser page
(static/porapp/js/mst-verify.js) gives the same reasons, word for word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .merkle.proof import VerifyResult, verify_proof

BUNDLE_FORMAT = "por-bundle-v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DEC = re.compile(r"0|[1-9][0-9]{0,38}")


class BundleInvalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedProof:
    """One proof that recomputes to its own root, for one or more assets of the tree."""

    number: int  # 1-based position in the bundle
    result: VerifyResult


@dataclass(frozen=True)
class Included:
    """One balance found inside an attested total."""

    code: str
    decimals: int
    balance: int
    total: int
    root_hash: str


def _snapshot_id(bundle: dict) -> str:
    snapshot = bundle.get("snapshot")
    if not isinstance(snapshot, dict) or "id" not in snapshot:
        raise BundleInvalid("bundle snapshot must be an object with an id")
    ident = snapshot["id"]
    if type(ident) is not int and not isinstance(ident, str):
        raise BundleInvalid("bundle snapshot id must be an integer or a string")
    return str(ident)


def check_bundle(bundle: Any) -> tuple[str, str, list[CheckedProof]]:
    """(snapshot id, account id, checked proofs) of a bundle whose every proof recomputes to
    its root from the bundle's account id and nonce; else BundleInvalid."""
    if not isinstance(bundle, dict):
        raise BundleInvalid("bundle must be a JSON object")
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleInvalid(f"bundle format must be {BUNDLE_FORMAT!r}")
    snapshot_id = _snapshot_id(bundle)
    account = bundle.get("account")
    if (
        not isinstance(account, dict)
        or not isinstance(account.get("id"), str)
        or not isinstance(account.get("nonce"), str)
        or not _HEX64.fullmatch(account["nonce"])
    ):
        raise BundleInvalid("bundle account must have a string id and a 64-hex-digit nonce")
    proofs = bundle.get("proofs")
    if not isinstance(proofs, list) or not proofs:
        raise BundleInvalid("bundle proofs must be a non-empty list")
    mine = {"id": account["id"], "nonce": account["nonce"]}
    checked = []
    seen: set[str] = set()
    for n, proof in enumerate(proofs, start=1):
        if not isinstance(proof, dict):
            raise BundleInvalid(f"proof {n}: must be an object")
        theirs = proof.get("account", mine)
        if (
            not isinstance(theirs, dict)
            or theirs.get("id") != mine["id"]
            or theirs.get("nonce") != mine["nonce"]
        ):
            raise BundleInvalid(f"proof {n}: its account differs from the bundle's")
        # The account block is the user's own: the leaf must be recomputed from it.
        result = verify_proof({**proof, "account": mine})
        if not result.valid:
            raise BundleInvalid(f"proof {n}: {result.reason}")
        for code, _ in result.assets:
            if code in seen:
                raise BundleInvalid(f"proof {n}: asset {code} has an earlier proof")
            seen.add(code)
        checked.append(CheckedProof(n, result))
    return snapshot_id, account["id"], checked


def _attested(predicate: Any, code: str) -> dict:
    assets = predicate.get("assets") if isinstance(predicate, dict) else None
    found = [
        a
        for a in (assets if isinstance(assets, list) else [])
        if isinstance(a, dict) and a.get("code") == code
    ]
    if len(found) != 1 or not isinstance(found[0].get("liabilities"), dict):
        raise BundleInvalid(f"{code}: the attestation states no liabilities for this asset")
    return found[0]["liabilities"]


def _amount(value: Any) -> int | None:
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and _DEC.fullmatch(value):
        return int(value)
    return None


def check_attested(snapshot_id: str, checked: list[CheckedProof], predicate: Any) -> list[Included]:
    """Every checked proof's root is the one the attestation names for its asset and this
    snapshot (root hash and root sum); the balances found, in bundle order."""
    out = []
    for proof in checked:
        r = proof.result
        for j, (code, decimals) in enumerate(r.assets):
            liabilities = _attested(predicate, code)
            named = liabilities.get("snapshot")
            if (type(named) is not int and not isinstance(named, str)) or str(named) != snapshot_id:
                raise BundleInvalid(
                    f"{code}: the attestation's liabilities are of another snapshot, "
                    f"not snapshot {snapshot_id}"
                )
            if liabilities.get("root_hash") != r.root_hash:
                raise BundleInvalid(
                    f"{code}: the proof's root is not the root attested for snapshot {snapshot_id}"
                )
            if _amount(liabilities.get("root_sum_units")) != r.root_sums[j]:
                raise BundleInvalid(
                    f"{code}: the proof's total differs from the total attested for snapshot "
                    f"{snapshot_id}"
                )
            out.append(Included(code, decimals, r.balances[j], r.root_sums[j], r.root_hash))
    return out


def plain_amount(value: int, decimals: int) -> str:
    """``value`` smallest units as whole tokens, exactly, without trailing zeros."""
    if decimals == 0:
        return str(value)
    whole, frac = divmod(value, 10**decimals)
    digits = f"{frac:0{decimals}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
