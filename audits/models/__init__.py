"""What porapp stores, one module per concept. Behaviour lives in the service modules."""

from audits.models.operations import Heartbeat
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
    "Chain",
    "Custodian",
    "CustodianKey",
    "CustodianStatement",
    "CustodianUser",
    "ExcludedAddress",
    "Heartbeat",
    "IdempotencyKey",
    "RawDocument",
    "StatementLine",
    "SupplyReading",
    "TokenDeployment",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
