"""On-chain supply services: read a deployment's supply, record manual figures, sum per asset.

The reading itself is :func:`audits.core.evm.read_supply` (framework-free); this module decides
what is stored and what counts. A failed read is stored as a failed reading with its error and
no amount, so an outage is never mistaken for a supply of zero. What a failure does to the
figure depends on its kind (``audits.core.evm``): a transient one (:class:`evm.RpcUnavailable`)
leaves the last good figure counted within its freshness window and the task retries; a
permanent one (:class:`evm.PermanentReadError`) makes the chain figure unknown at once.

Reorgs: a reading whose block is no longer canonical at its height is marked orphaned and
never counts. Every read learns this for free at the height it pins, and checks the hash of
the reading that counts until then (one ``eth_getBlockByNumber`` on the same node); the
counted reading is the non-orphaned one confirmed most recently, never simply the highest.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from audits.choices import ReadingStatus, SupplySource
from audits.core import evm
from audits.models import (
    Asset,
    Chain,
    SupplyReading,
    TokenDeployment,
)
from audits.triggers import request_runs

logger = logging.getLogger(__name__)

#: A chain reading counts towards an asset's total only while a read has confirmed it this
#: recently (the schedule runs every 60 s, so this tolerates a few missed runs or retries).
CHAIN_STALE_AFTER = timedelta(minutes=15)
#: An issuer-reported (manual) figure counts for this long after its as-of date.
MANUAL_STALE_AFTER = timedelta(days=7)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RpcNotConfigured(evm.PermanentReadError):
    """The chain has no RPC URL, or a URL names an environment variable that is not set."""


def expand_rpc_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` placeholders with environment values; the result is a secret."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise RpcNotConfigured(f"RPC URL placeholder ${{{name}}} is not set in the environment")
        return env[name]

    return _PLACEHOLDER.sub(value, url)


def redacted_rpc_urls(chain: Chain) -> list[str]:
    """The chain's RPC endpoints as they may be shown: scheme, host and port only."""
    return [evm.redact_url(url) for url in chain.rpc_url_list]


# --------------------------------------------------------------------------- reading


def deployments_to_read() -> list[int]:
    """Ids of active deployments of active assets on active chains that have RPC URLs."""
    return list(
        TokenDeployment.objects.filter(active=True, asset__active=True, chain__active=True)
        .exclude(chain__rpc_urls="")
        .order_by("id")
        .values_list("id", flat=True)
    )


#: Celery limits on one run of the read task (seconds). The soft limit interrupts the run;
#: the hard limit kills the worker process running it.
READ_SOFT_TIME_LIMIT = 90
READ_TIME_LIMIT = 120
#: What the RPC part of one run may take in all, across every URL: each URL has its chain's
#: ``rpc_timeout``, and together they stop here, well inside the soft limit.
READ_RPC_BUDGET = 60.0
#: How long a queued read owns its deployment; every run renews it when it starts. Longer
#: than the hard limit plus the longest retry backoff, so a run that is slow (or killed)
#: still owns its deployment and no second read piles up (tests/supply/test_claims.py checks
#: the inequality); short enough that a worker that died delays the next read by minutes.
READ_CLAIM_LEASE = timedelta(minutes=5)

#: Confirmations below this (unless SUPPLY_MIN_CONFIRMATIONS / _BY_CHAIN say otherwise) are
#: refused in the admin: a reading that shallow can be reorganised away after it counted.
DEFAULT_MIN_CONFIRMATIONS = 2


def minimum_confirmations(chain_id: int) -> int:
    """The least confirmations a chain may be read with (settings, per chain id)."""
    by_chain = getattr(settings, "SUPPLY_MIN_CONFIRMATIONS_BY_CHAIN", {})
    default = getattr(settings, "SUPPLY_MIN_CONFIRMATIONS", DEFAULT_MIN_CONFIRMATIONS)
    return int(by_chain.get(chain_id, default))


def claim_for_reading(deployment_ids: Iterable[int], now: datetime | None = None) -> list[int]:
    """Claim deployments for one read each; returns those this call won.

    A conditional UPDATE per deployment: while a read (and its retries) owns a deployment, the
    schedule queues no second read of it, so a dead RPC does not pile up retrying tasks.
    """
    now = now or timezone.now()
    won = []
    for deployment_id in deployment_ids:
        claimed = (
            TokenDeployment.objects.filter(pk=deployment_id)
            .filter(
                Q(supply_read_claimed_until__isnull=True) | Q(supply_read_claimed_until__lte=now)
            )
            .update(supply_read_claimed_until=now + READ_CLAIM_LEASE)
        )
        if claimed:
            won.append(deployment_id)
    return won


def renew_claim(deployment_id: int, now: datetime | None = None) -> None:
    """A run of the read has started: it owns the deployment for one more lease."""
    now = now or timezone.now()
    TokenDeployment.objects.filter(pk=deployment_id).update(
        supply_read_claimed_until=now + READ_CLAIM_LEASE
    )


def release_claim(deployment_id: int) -> None:
    """The read of this deployment is over (stored, or given up): the next may be queued."""
    TokenDeployment.objects.filter(pk=deployment_id).update(supply_read_claimed_until=None)


def read_deployment(deployment_id: int, *, task_id: str | None = None) -> SupplyReading:
    """Read one deployment's supply from its chain and store the reading (ok or failed).

    Re-reading a block already stored returns that reading. On a transient error
    (:class:`audits.core.evm.RpcUnavailable`) the failed reading is stored and the error
    re-raised so the Celery task retries; a permanent error returns the failed reading,
    which from then on keeps the chain figure out of every total until a read succeeds.
    The same read checks that the reading counted so far is still canonical.
    """
    deployment = TokenDeployment.objects.select_related("chain", "asset").get(pk=deployment_id)
    chain = deployment.chain
    excluded = list(
        deployment.excluded_addresses.filter(active=True)
        .order_by("address")
        .values_list("address", flat=True)
    )
    try:
        templates = chain.rpc_url_list
        if not templates:
            raise RpcNotConfigured(
                f"chain {chain.chain_id} has no RPC URL configured; enter its supply manually"
            )
        counted = _chain_readings(deployment).first()
        observation = evm.read_supply(
            [expand_rpc_url(url) for url in templates],
            chain.chain_id,
            deployment.address,
            deployment.decimals,
            excluded=excluded,
            confirmations=chain.confirmations,
            timeout=float(chain.rpc_timeout),
            check_blocks=[counted.block_number] if counted and counted.block_number else [],
            total_timeout=READ_RPC_BUDGET,
        )
    except evm.SupplyReadError as exc:
        reading = _record_failure(deployment, exc, task_id)
        # exc.message is built from redacted URLs only (audits.core.evm guarantees it).
        logger.warning(
            "supply read failed",
            extra={
                "deployment": deployment.pk,
                "chain_id": chain.chain_id,
                "error": type(exc).__name__,
                "detail": exc.message,
                "retryable": exc.retryable,
            },
        )
        if exc.retryable:
            raise
        request_runs([deployment.asset_id])  # the chain figure is void from now on
        return reading
    reading = _record_observation(deployment, observation, task_id)
    orphaned = _mark_orphans(
        chain, {**observation.canonical_hashes, observation.block_number: observation.block_hash}
    )
    if orphaned or counted is None or counted.circulating != reading.circulating:
        request_runs(orphaned or [deployment.asset_id])
    return reading


def _chain_readings(deployment: TokenDeployment) -> QuerySet[SupplyReading]:
    """Ok, non-orphaned chain readings, the one that counts first: most recently confirmed.

    Not the highest block: after confirmations are raised, or on a lagging backup node, the
    newest read pins a lower block, and a higher one read earlier may have been orphaned.
    """
    return SupplyReading.objects.filter(
        deployment=deployment,
        status=ReadingStatus.OK,
        source=SupplySource.CHAIN,
        orphaned_at__isnull=True,
    ).order_by(F("last_confirmed_at").desc(nulls_last=True), "-block_number", "-id")


def _mark_orphans(chain: Chain, canonical: Mapping[int, str]) -> set[int]:
    """Mark every ok reading on ``chain`` whose block lost its height to another hash; the
    ids of the assets whose readings were marked.

    Block hashes belong to the chain, so one deployment's read settles the readings of
    every token on that chain at the heights it saw.
    """
    now = timezone.now()
    marked = 0
    assets: set[int] = set()
    for number, block_hash in canonical.items():
        lost = SupplyReading.objects.filter(
            deployment__chain=chain,
            status=ReadingStatus.OK,
            source=SupplySource.CHAIN,
            block_number=number,
            orphaned_at__isnull=True,
        ).exclude(block_hash=block_hash)
        assets.update(lost.values_list("deployment__asset_id", flat=True))
        marked += lost.update(orphaned_at=now, canonical_hash=block_hash)
    if marked:
        logger.warning(
            "supply readings orphaned by a reorg",
            extra={"chain_id": chain.chain_id, "readings": marked, "heights": sorted(canonical)},
        )
    return assets


def _record_failure(
    deployment: TokenDeployment, exc: evm.SupplyReadError, task_id: str | None
) -> SupplyReading:
    now = timezone.now()
    error = f"{type(exc).__name__}: {exc.message}"
    values = {
        "error": error,
        "retryable": exc.retryable,
        "rpc": exc.rpc,
        "attempted_at": now,
        "confirmations": deployment.chain.confirmations,
    }
    if task_id:
        # Retries of one task share its id: one failed row counts the attempts.
        updated = SupplyReading.objects.filter(
            deployment=deployment, task_id=task_id, status=ReadingStatus.FAILED
        ).update(attempts=F("attempts") + 1, **values)
        if updated:
            return SupplyReading.objects.get(
                deployment=deployment, task_id=task_id, status=ReadingStatus.FAILED
            )
    return SupplyReading.objects.create(
        deployment=deployment,
        source=SupplySource.CHAIN,
        status=ReadingStatus.FAILED,
        task_id=task_id or "",
        **values,
    )


def _record_observation(
    deployment: TokenDeployment, obs: evm.SupplyObservation, task_id: str | None
) -> SupplyReading:
    now = timezone.now()
    same_block = SupplyReading.objects.filter(
        deployment=deployment,
        status=ReadingStatus.OK,
        source=SupplySource.CHAIN,
        block_hash=obs.block_hash,
    )
    existing = same_block.first()
    if existing is None:
        excluded_raw = sum(obs.excluded_balances.values())
        try:
            with transaction.atomic():
                return SupplyReading.objects.create(
                    deployment=deployment,
                    source=SupplySource.CHAIN,
                    status=ReadingStatus.OK,
                    block_number=obs.block_number,
                    block_hash=obs.block_hash,
                    block_timestamp=obs.block_timestamp,
                    as_of=obs.block_timestamp,
                    decimals=obs.decimals,
                    total_supply_raw=Decimal(obs.total_supply_raw),
                    total_supply=obs.total_supply,
                    excluded_balances={a: str(v) for a, v in obs.excluded_balances.items()},
                    excluded_raw=Decimal(excluded_raw),
                    circulating_raw=Decimal(obs.circulating_raw),
                    circulating=obs.circulating,
                    rpc=obs.rpc,
                    attempted_at=now,
                    last_confirmed_at=now,
                    confirmations=deployment.chain.confirmations,
                    task_id=task_id or "",
                )
        except IntegrityError:
            # A concurrent read of the same block won the insert; use its row.
            existing = same_block.first()
            if existing is None:
                raise
    # Read again as canonical: confirmed now, and no longer orphaned if a reorg had been
    # undone (the same hash back at its height).
    same_block.filter(pk=existing.pk).update(
        last_confirmed_at=now, orphaned_at=None, canonical_hash=""
    )
    existing.last_confirmed_at, existing.orphaned_at, existing.canonical_hash = now, None, ""
    return existing


# --------------------------------------------------------------------------- manual source


def tokens_to_raw(amount: Decimal, decimals: int) -> int:
    """Whole tokens -> base units, exactly; refuses amounts finer than one base unit."""
    if not amount.is_finite() or amount < 0:
        raise ValidationError("The supply must be a finite, non-negative number.")
    sign, digits, exponent = amount.as_tuple()
    # Shift the exponent on the digit tuple: Decimal arithmetic would round at 28 digits.
    shifted = Decimal((sign, digits, int(exponent) + decimals))
    if shifted != shifted.to_integral_value():
        raise ValidationError(
            f"{amount} is finer than one base unit of a token with {decimals} decimals."
        )
    raw = int(shifted)
    if raw >= 2**256:
        raise ValidationError("The supply does not fit in a uint256.")
    return raw


def record_manual_supply(
    deployment: TokenDeployment,
    supply: Decimal,
    *,
    reference: str,
    entered_by,
    as_of: datetime | None = None,
) -> SupplyReading:
    """Store an issuer-reported supply (whole tokens) for a chain read without RPC access."""
    reference = reference.strip()
    if not reference:
        raise ValidationError({"reference": "Say where the issuer reported this figure."})
    as_of = as_of or timezone.now()
    if as_of > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"as_of": "The as-of time cannot be in the future."})
    raw = tokens_to_raw(supply, deployment.decimals)
    amount = evm.to_tokens(raw, deployment.decimals)
    request_runs([deployment.asset_id])
    return SupplyReading.objects.create(
        deployment=deployment,
        source=SupplySource.MANUAL,
        status=ReadingStatus.OK,
        as_of=as_of,
        decimals=deployment.decimals,
        total_supply_raw=Decimal(raw),
        total_supply=amount,
        excluded_raw=Decimal(0),
        circulating_raw=Decimal(raw),
        circulating=amount,
        attempted_at=timezone.now(),
        last_confirmed_at=as_of,
        reference=reference,
        entered_by=entered_by,
    )


# --------------------------------------------------------------------------- per asset


@dataclass(frozen=True)
class DeploymentSupply:
    """Where one deployment's supply stands now."""

    deployment: TokenDeployment
    #: "ok" (counted), "stale", "failed" or "missing" (not counted)
    state: str
    #: the reading that counts, or the newest good one when stale
    reading: SupplyReading | None
    #: the newest failed attempt, if it is newer than ``reading``
    latest_error: SupplyReading | None
    note: str = ""

    @property
    def counted(self) -> bool:
        return self.state == "ok"


@dataclass(frozen=True)
class AssetSupply:
    """An asset's circulating supply across its chains; no total unless every chain counts."""

    asset: Asset
    deployments: list[DeploymentSupply] = field(default_factory=list)
    circulating: Decimal | None = None
    total_supply: Decimal | None = None
    reason: str = ""
    includes_manual: bool = False


def _stale_after(source: str) -> timedelta:
    if source == SupplySource.MANUAL:
        return getattr(settings, "SUPPLY_MANUAL_STALE_AFTER", MANUAL_STALE_AFTER)
    return getattr(settings, "SUPPLY_CHAIN_STALE_AFTER", CHAIN_STALE_AFTER)


def freshness(reading: SupplyReading) -> datetime:
    """When the figure was last confirmed (chain: last read of its block; manual: as-of)."""
    if reading.last_confirmed_at is not None:
        return reading.last_confirmed_at
    if reading.source == SupplySource.MANUAL and reading.as_of is not None:
        return reading.as_of
    return reading.attempted_at


def deployment_supply(deployment: TokenDeployment, now: datetime) -> DeploymentSupply:
    """The reading that counts for ``deployment`` now, or why none does (see
    :func:`deployment_supplies`)."""
    return deployment_supplies([deployment], now)[deployment.pk]


def _newest(order: tuple, **match) -> Subquery:
    return Subquery(
        SupplyReading.objects.filter(deployment=OuterRef("pk"), **match)
        .order_by(*order)
        .values("id")[:1]
    )


_NEWEST_ATTEMPT = ("-attempted_at", "-id")


#: The reading fields :func:`deployment_supplies` itself needs (for its callers' ``only``).
JUDGED_FIELDS = ("source", "status", "as_of", "attempted_at", "last_confirmed_at",
                 "block_number", "error", "deployment_id")  # fmt: skip


@dataclass(frozen=True)
class Judgement:
    """Where one deployment's supply stands (see :class:`DeploymentSupply`)."""

    state: str
    reading: SupplyReading | None
    latest_error: SupplyReading | None
    note: str = ""

    @property
    def counted(self) -> bool:
        return self.state == "ok"


def deployment_supplies(
    deployments: Iterable[TokenDeployment], now: datetime, *, only: Sequence[str] = ()
) -> dict[int, DeploymentSupply]:
    """Per deployment id: the reading that counts now, or why none does (see
    :func:`judge_deployments`)."""
    by_id = {d.pk: d for d in deployments}
    return {
        pk: DeploymentSupply(by_id[pk], j.state, j.reading, j.latest_error, j.note)
        for pk, j in judge_deployments(by_id, now, only=only).items()
    }


def judge_deployments(
    deployment_ids: Iterable[int], now: datetime, *, only: Sequence[str] = ()
) -> dict[int, Judgement]:
    """Per deployment id: the reading that counts now, or why none does. Two queries in all,
    however many deployments (reconciling every asset each minute must not grow with them).

    A fresh chain reading wins: the non-orphaned one confirmed most recently, while that was
    within its staleness window. Otherwise a fresh issuer-reported (manual) one. A failure
    newer than the chain reading acts by its kind: a transient one (node down, timeout) is
    reported beside the fresh reading but does not discard it, since a node blip must not
    blank a total read minutes ago; a permanent one (revert, no contract, wrong decimals or
    chain id, refused key) discards the chain figure at once, since waiting will not fix it.
    """
    rows = list(
        TokenDeployment.objects.filter(pk__any_of=list(deployment_ids))
        .annotate(
            chain_ok_id=_newest(
                (F("last_confirmed_at").desc(nulls_last=True), "-block_number", "-id"),
                status=ReadingStatus.OK,
                source=SupplySource.CHAIN,
                orphaned_at__isnull=True,
            ),
            manual_id=_newest(("-as_of", "-id"), source=SupplySource.MANUAL),
            failure_id=_newest(_NEWEST_ATTEMPT, status=ReadingStatus.FAILED),
            permanent_id=_newest(_NEWEST_ATTEMPT, status=ReadingStatus.FAILED, retryable=False),
            orphan_id=_newest(("-orphaned_at", "-id"), orphaned_at__isnull=False),
        )
        .values_list("pk", "chain_ok_id", "manual_id", "failure_id", "permanent_id", "orphan_id")
    )
    wanted = {i for row in rows for i in row[1:] if i is not None}
    # ``only``: load just these reading fields besides JUDGED_FIELDS (thousands of readings
    # at once in a reconciliation; the rest would be built and never read).
    chosen = SupplyReading.objects.only(*JUDGED_FIELDS, *only) if only else SupplyReading.objects
    readings = {r.pk: r for r in chosen.filter(pk__any_of=list(wanted))} if wanted else {}

    def get(i: int | None) -> SupplyReading | None:
        return readings[i] if i is not None else None

    return {pk: _judge(*(get(i) for i in ids), now=now) for pk, *ids in rows}


def _judge(
    chain_ok: SupplyReading | None,
    manual: SupplyReading | None,
    failure: SupplyReading | None,
    permanent: SupplyReading | None,
    orphan: SupplyReading | None,
    *,
    now: datetime,
) -> Judgement:
    since = freshness(chain_ok) if chain_ok is not None else None
    # Only a permanent failure after the chain reading was last confirmed discards it; the
    # newest permanent failure is after that instant if any is.
    if permanent is not None and since is not None and permanent.attempted_at <= since:
        permanent = None

    def fresh(r: SupplyReading | None) -> bool:
        return r is not None and now - freshness(r) <= _stale_after(r.source)

    counted_chain = chain_ok if fresh(chain_ok) and permanent is None else None
    best = counted_chain or (manual if fresh(manual) else None)
    newest_ok = max((r for r in (chain_ok, manual) if r is not None), key=freshness, default=None)
    shown = best or newest_ok
    if failure is not None and shown is not None and failure.attempted_at <= freshness(shown):
        failure = None
    if best is not None:
        return Judgement("ok", best, failure)
    if permanent is not None:
        return Judgement("failed", newest_ok, permanent, permanent.error)
    if failure is not None:
        return Judgement("failed", newest_ok, failure, failure.error)
    if newest_ok is not None:
        age = now - freshness(newest_ok)
        return Judgement("stale", newest_ok, None, f"last confirmed {_ago(age)} ago")
    if orphan is not None:
        note = f"block {orphan.block_number} was reorganised away; no reading since"
        return Judgement("missing", None, None, note)
    return Judgement("missing", None, None, "no reading yet")


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h"


def _sum_tokens(amounts: Iterable[tuple[int, int]]) -> Decimal:
    """Exact sum of (raw, decimals) pairs in whole tokens (no 28-digit Decimal rounding)."""
    pairs = list(amounts)
    places = max((d for _, d in pairs), default=0)
    return evm.to_tokens(sum(raw * 10 ** (places - d) for raw, d in pairs), places)


def asset_supply(asset: Asset, now: datetime | None = None) -> AssetSupply:
    """Latest supply of ``asset`` on each active chain and, if all are counted, the total."""
    now = now or timezone.now()
    deployments = asset.deployments.filter(active=True, chain__active=True).select_related("chain")
    ordered = list(deployments.order_by("chain__chain_id"))
    judged = deployment_supplies(ordered, now)
    rows = [judged[d.pk] for d in ordered]
    if not rows:
        return AssetSupply(asset, rows, reason="no active deployment")
    missing = [r for r in rows if not r.counted]
    if missing:
        reason = "; ".join(
            f"{r.deployment.chain.name}: {r.state}" + (f" ({r.note})" if r.note else "")
            for r in missing
        )
        return AssetSupply(asset, rows, reason=f"not every chain has a current reading: {reason}")
    readings = [r.reading for r in rows if r.reading is not None]

    def pairs(attr: str) -> list[tuple[int, int]]:
        return [(int(getattr(x, attr)), int(x.decimals or 0)) for x in readings]

    return AssetSupply(
        asset,
        rows,
        circulating=_sum_tokens(pairs("circulating_raw")),
        total_supply=_sum_tokens(pairs("total_supply_raw")),
        includes_manual=any(x.source == SupplySource.MANUAL for x in readings),
    )


def latest_supply_by_asset(now: datetime | None = None) -> list[AssetSupply]:
    """:func:`asset_supply` for every active asset, by code."""
    now = now or timezone.now()
    return [asset_supply(asset, now) for asset in Asset.objects.filter(active=True)]
