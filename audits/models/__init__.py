"""What porapp stores, one module per concept. Behaviour lives in the service modules."""

from audits.models.operations import Heartbeat
from audits.models.reference import Asset, Chain, Custodian, CustodianUser, TokenDeployment

__all__ = ["Asset", "Chain", "Custodian", "CustodianUser", "Heartbeat", "TokenDeployment"]
