"""The signed payload in words and numbers for people: times as datetimes, ratios as
percentages, statuses in plain words. Only reshapes what was signed; it adds nothing but the
custodians' names (the payload names them by id)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from audits.models import Custodian

STATUS_WORDS = {
    "healthy": "Healthy: fully backed",
    "warning": "Warning: reserves slightly short of supply",
    "breach": "Breach: not fully backed",
    "undercollateralized": "Undercollateralized: users' balances exceed reserves",
    "stale": "Stale: the evidence is too old to say",
    "unknown": "Unknown: some evidence is missing",
    None: "No reconciliation yet",
}


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def as_percent(ratio: str | None) -> str | None:
    """ "0.99875" → "99.875 %", exactly (no rounding: it is the signed figure)."""
    if ratio is None:
        return None
    value = (Decimal(ratio) * 100).normalize()
    return f"{value:f} %"


def _liabilities(entry: dict | None) -> dict | None:
    if entry is None:
        return None
    return {**entry, "as_of_at": when(entry["as_of"])}


def predicate_for_people(predicate: dict) -> dict:
    """The predicate with each asset's figures ready to show."""
    ids = {s["custodian_id"] for a in predicate["assets"] for s in a["statements"]}
    names = dict(Custodian.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    assets = []
    for a in predicate["assets"]:
        assets.append(
            {
                **a,
                "status_words": STATUS_WORDS.get(a["status"], a["status"]),
                "ratio_percent": as_percent(a["ratio"]),
                "evidence_as_of_at": when(a["evidence_as_of"]),
                "reconciled_at_at": when(a["reconciled_at"]),
                # Attestations from before liability snapshots have no such field.
                "liabilities": _liabilities(a.get("liabilities")),
                "statements": [
                    {
                        **s,
                        "as_of_at": when(s["as_of"]),
                        "custodian": names.get(s["custodian_id"], f"custodian {s['custodian_id']}"),
                    }
                    for s in a["statements"]
                ],
            }
        )
    return {
        "issued_at": when(predicate["issued_at"]),
        "evidence_as_of": when(predicate["evidence_as_of"]),
        "sequence": predicate.get("sequence"),
        "previous": predicate.get("previous"),
        "assets": assets,
    }
