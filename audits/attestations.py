"""Issue signed attestations of every asset's reserves (docs/attestation-format.md).

Each attestation is an in-toto Statement in a DSSE envelope signed with the first key of
ATTESTATION_KEY_FILES, numbered without gaps and naming the previous one's payload digest.
They are issued under one lock, so two workers racing give n and n+1 (or one finds nothing
to do), and a failure to sign rolls everything back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from audits import attestation_keys
from audits.core import attestation as core
from audits.models import (
    Asset,
    Attestation,
    CustodianStatement,
    Eligibility,
    EventCounter,
    ReconciledReading,
    ReconciledStatement,
    Reconciliation,
)
from audits.statements import plain_decimal

logger = logging.getLogger(__name__)

# The EventCounter row whose lock serialises issuance (its value: the last sequence given).
COUNTER = "attestations"
CHANGED, PERIODIC, HEARTBEAT = "changed", "periodic", "heartbeat"


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else plain_decimal(value)


def statement_file_name(statement: CustodianStatement) -> str:
    return f"statement-{statement.pk}.{statement.format}"


def liability_tree_file_name(snapshot_id: int, code: str) -> str:
    return f"liabilities-{snapshot_id}-{code}.mst"


def _liabilities(rec: Reconciliation) -> dict | None:
    """The liability snapshot the reconciliation measured the reserves against, or None."""
    tree = rec.liabilities_tree
    if tree is None or rec.liabilities is None:
        return None
    return {
        "snapshot": tree.snapshot_id,
        "as_of": _time(tree.snapshot.as_of),
        "root_hash": tree.root_hash,
        # Whole tokens as the reconciliation counted them, and the tree's own integer.
        "root_sum": plain_decimal(rec.liabilities),
        "root_sum_units": str(int(tree.root_sum)),
        "leaf_count": tree.leaf_count,
        "tree_sha256": tree.file_sha256,
    }


def build_predicate(now: datetime) -> tuple[dict, list[tuple[str, str]]]:
    """The predicate (without `sequence` and `previous`, which `issue` adds under its lock)
    from the latest reconciliation of every active asset, and the subjects: every statement
    file and liability tree file those reconciliations counted, with its SHA-256. A fixed
    number of queries."""
    assets = list(
        Asset.objects.filter(active=True)
        .select_related("eligibility", "eligibility__latest__liabilities_tree__snapshot")
        .order_by("code")
    )
    latest_ids = []
    for asset in assets:
        row = _eligibility(asset)
        if row is not None and row.latest_id is not None:
            latest_ids.append(row.latest_id)
    statement_links: dict[int, list[ReconciledStatement]] = defaultdict(list)
    for link in (
        ReconciledStatement.objects.filter(reconciliation_id__in=latest_ids)
        .select_related("statement", "statement__raw")
        .order_by("statement_id")
    ):
        statement_links[link.reconciliation_id].append(link)
    joined = [
        link.statement.pk
        for links in statement_links.values()
        for link in links
        if link.statement.raw_id is None
    ]
    pages: dict[int, list[CustodianStatement]] = defaultdict(list)
    for page in (
        CustodianStatement.objects.filter(part_of_id__in=joined)
        .select_related("raw")
        .order_by("page_no", "id")
    ):
        if page.part_of_id is not None:
            pages[page.part_of_id].append(page)
    reading_links: dict[int, list[ReconciledReading]] = defaultdict(list)
    for r in (
        ReconciledReading.objects.filter(reconciliation_id__in=latest_ids)
        .select_related("reading", "deployment__chain")
        .order_by("deployment__chain__chain_id", "deployment_id")
    ):
        reading_links[r.reconciliation_id].append(r)

    subjects: dict[str, str] = {}
    entries = []
    as_of_values = []
    for asset in assets:
        row = _eligibility(asset)
        rec = row.latest if row is not None else None
        entry: dict = {
            "code": asset.code,
            "isin": asset.isin,
            "state": row.state if row is not None else "frozen",
            "eligible": bool(row is not None and row.eligible and rec is not None),
            "haircut_bps": row.haircut_bps if row is not None else 0,
        }
        if rec is None:
            entry.update(
                status=None, reserves=None, supply=None, ratio=None, shortfall_bps=None,
                evidence_as_of=None, reconciled_at=None, multipliers=[], statements=[],
                supply_readings=[], liabilities=None,
            )  # fmt: skip
            entries.append(entry)
            continue
        statements = []
        multipliers = set()
        for link in statement_links[rec.pk]:
            multipliers.add(plain_decimal(link.shares_per_token))
            st = link.statement
            files = [page for page in pages[st.pk]] if st.raw_id is None else [st]
            listed = []
            for f in files:
                if f.raw is None:
                    continue
                name = statement_file_name(f)
                subjects[name] = f.raw.sha256
                listed.append({"name": name, "sha256": f.raw.sha256})
            statements.append(
                {
                    "id": st.pk,
                    "custodian_id": st.custodian_id,
                    "as_of": _time(st.as_of),
                    "files": listed,
                    "settled": plain_decimal(link.settled),
                    "pending_delivery": plain_decimal(link.pending_delivery),
                    "shares_per_token": plain_decimal(link.shares_per_token),
                    "tokens": plain_decimal(link.tokens),
                }
            )
        readings = []
        for r in reading_links[rec.pk]:
            reading = r.reading
            readings.append(
                {
                    "chain_id": r.deployment.chain.chain_id,
                    "token": r.deployment.address,
                    "circulating": _amount(r.circulating),
                    "source": reading.source if reading else None,
                    "block_number": reading.block_number if reading else None,
                    "block_hash": (reading.block_hash or None) if reading else None,
                    "confirmations": reading.confirmations if reading else None,
                    "problem": r.problem or None,
                }
            )
        if rec.evidence_as_of is not None:
            as_of_values.append(rec.evidence_as_of)
        liabilities = _liabilities(rec)
        if liabilities is not None:
            name = liability_tree_file_name(liabilities["snapshot"], asset.code)
            subjects[name] = liabilities["tree_sha256"]
        entry.update(
            status=rec.status,
            reserves=_amount(rec.reserves),
            supply=_amount(rec.supply),
            ratio=_amount(rec.ratio),
            shortfall_bps=rec.shortfall_bps,
            evidence_as_of=_time(rec.evidence_as_of),
            reconciled_at=_time(rec.computed_at),
            multipliers=sorted(multipliers, key=Decimal),
            statements=statements,
            supply_readings=readings,
            liabilities=liabilities,
        )
        entries.append(entry)
    predicate = {
        "issued_at": _time(now),
        "evidence_as_of": _time(min(as_of_values)) if as_of_values else None,
        "assets": entries,
    }
    return predicate, sorted(subjects.items())


def _eligibility(asset: Asset) -> Eligibility | None:
    try:
        return asset.eligibility
    except Eligibility.DoesNotExist:
        return None


def enabled() -> bool:
    """Whether a signing key is configured; without one the periodic task only warns."""
    if settings.ATTESTATION_KEYS:
        return True
    logger.warning("attestations are off: %s is not set", attestation_keys.ENV_VAR)
    return False


def latest() -> Attestation | None:
    return Attestation.objects.order_by("-sequence").first()


def statement_of(attestation: Attestation) -> dict:
    return json.loads(bytes(attestation.payload))


def _standing(assets: list[dict]) -> dict:
    return {a["code"]: (a["status"], a["state"], a["eligible"], a["haircut_bps"]) for a in assets}


def should_issue(now: datetime | None = None, previous: Attestation | None = None) -> str | None:
    """Why an attestation is due now, or None: "changed" at once when any asset's status or
    eligibility differs from the latest attestation's, "periodic" when only figures changed
    and the last is older than ATTESTATION_MIN_INTERVAL, "heartbeat" when the last is older
    than ATTESTATION_HEARTBEAT."""
    now = now or timezone.now()
    previous = previous if previous is not None else latest()
    if previous is None:
        return CHANGED
    before = statement_of(previous)["predicate"]["assets"]
    # Through JSON and back, so both sides have the same types.
    current = json.loads(core.canonical_json(build_predicate(now)[0]["assets"]))
    if _standing(current) != _standing(before):
        return CHANGED
    age = now - previous.issued_at
    if current != before and age >= settings.ATTESTATION_MIN_INTERVAL:
        return PERIODIC
    if age >= settings.ATTESTATION_HEARTBEAT:
        return HEARTBEAT
    return None


def issue(reason: str, now: datetime | None = None) -> Attestation:
    """Sign and store the next attestation, whatever is due; see `issue_if_due`."""
    attestation = _issue(now, reason)
    assert attestation is not None
    return attestation


def issue_if_due(now: datetime | None = None) -> Attestation | None:
    """The next attestation if `should_issue` says one is due (judged under the lock, so two
    workers never issue the same one twice), else None."""
    return _issue(now, None)


def _check_window(key: attestation_keys.SigningKey, now: datetime) -> None:
    """Never sign what verifiers would refuse for the key's validity window."""
    if (
        key.record.revoked_at is not None
        or now < key.record.not_before
        or (key.record.not_after is not None and key.record.not_after <= now)
    ):
        raise ImproperlyConfigured(
            f"{attestation_keys.ENV_VAR}: the first key ({key.kid}) is revoked or not valid "
            "at this time; put a valid key first."
        )


def _issue(asked: datetime | None, reason: str | None) -> Attestation | None:
    now = (asked or timezone.now()).replace(microsecond=0)
    # The key first: a missing or unreadable key fails before anything is locked or written.
    key = attestation_keys.signing_key(now)
    _check_window(key, now)
    with transaction.atomic():
        EventCounter.objects.get_or_create(name=COUNTER)
        EventCounter.objects.select_for_update().get(name=COUNTER)
        previous = latest()
        # The time is read again under the lock, and never before the previous attestation's:
        # a worker that waited for the lock would otherwise sign an issued_at earlier than the
        # attestation it now follows, and verifiers refuse that chain link.
        now = (asked or timezone.now()).replace(microsecond=0)
        if previous is not None and now < previous.issued_at:
            now = previous.issued_at
        _check_window(key, now)
        if reason is None:
            reason = should_issue(now, previous)
            if reason is None:
                return None
        predicate, subjects = build_predicate(now)
        sequence = (previous.sequence if previous else 0) + 1
        predicate["sequence"] = sequence
        predicate["previous"] = (
            core.payload_digest(json.loads(previous.envelope)) if previous else None
        )
        statement = core.build_statement(subjects, predicate)
        envelope = core.sign(statement, key.private_key, key.kid)
        payload = base64.b64decode(envelope["payload"])
        attestation = Attestation.objects.create(
            sequence=sequence,
            issued_at=now,
            previous=previous,
            payload=payload,
            envelope=json.dumps(envelope, sort_keys=True, separators=(",", ":")),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            key=key.record,
            reason=reason,
            subjects=[list(s) for s in subjects],
        )
        EventCounter.objects.filter(pk=COUNTER).update(value=sequence)
    logger.info(
        "attestation %s issued (%s)",
        sequence,
        reason,
        extra={"sequence": sequence, "reason": reason, "kid": key.kid},
    )
    return attestation
