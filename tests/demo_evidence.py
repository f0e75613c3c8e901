"""The demo's evidence without chains or a worker: each demo custodian's statement as of the
last close, and the minted supply reported by the issuer, as `rundemo` would read it."""

from __future__ import annotations

from decimal import Decimal

from audits import statements, supply
from audits.demo import DEMO_HOLDINGS, DEMO_MINTS, demo_as_of, demo_csv
from audits.models import Custodian, TokenDeployment


def report_demo_evidence(admin_user) -> None:
    as_of = demo_as_of()
    for lei in DEMO_HOLDINGS:
        statements.submit_statement(
            custodian=Custodian.objects.get(lei=lei), user=admin_user, raw=demo_csv(lei),
            fmt="csv", as_of=as_of,
        )  # fmt: skip
    for deployment in TokenDeployment.objects.select_related("asset", "chain"):
        amount = DEMO_MINTS[deployment.asset.code][deployment.chain.chain_id]
        supply.record_manual_supply(
            deployment, Decimal(amount), reference="demo issuer report", entered_by=admin_user
        )
