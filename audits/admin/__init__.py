"""The Django admin, one module per concept; importing registers the ModelAdmins."""

from audits.admin import (  # noqa: F401
    attestations,
    liabilities,
    market_calendars,
    reconciliation,
    reference,
    statements,
    supply,
    webhooks,
)
