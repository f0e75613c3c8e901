"""What porapp stores, one module per concept. Behaviour lives in the service modules."""

from audits.models import lookups  # noqa: F401  (registers field__any_of)
from audits.models.attestations import Attestation, AttestationKey
from audits.models.eligibility import Eligibility, EligibilityEvent, EventCounter
from audits.models.liabilities import LiabilitySnapshot, LiabilityTree, PlatformOperator
from audits.models.market_calendars import MarketClosure
from audits.models.operations import Heartbeat
from audits.models.reconciliation import (
    AssetPolicy,
    MultiplierChange,
    ReconciledReading,
    ReconciledStatement,
    Reconciliation,
)
from audits.models.reference import Asset, Chain, Custodian, CustodianUser, TokenDeployment
from audits.models.statements import (
    ApiToken,
    CustodianKey,
    CustodianStatement,
    IdempotencyKey,
    RawDocument,
    StatementLine,
)
from audits.models.supply import ExcludedAddress, SupplyReading
from audits.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiToken",
    "Asset",
    "AssetPolicy",
    "Attestation",
    "AttestationKey",
    "Chain",
    "Custodian",
    "CustodianKey",
    "CustodianStatement",
    "CustodianUser",
    "Eligibility",
    "EligibilityEvent",
    "EventCounter",
    "ExcludedAddress",
    "Heartbeat",
    "IdempotencyKey",
    "LiabilitySnapshot",
    "LiabilityTree",
    "MarketClosure",
    "MultiplierChange",
    "PlatformOperator",
    "RawDocument",
    "ReconciledReading",
    "ReconciledStatement",
    "Reconciliation",
    "StatementLine",
    "SupplyReading",
    "TokenDeployment",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
