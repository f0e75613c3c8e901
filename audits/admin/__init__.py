"""The Django admin, one module per concept; importing registers the ModelAdmins."""

from audits.admin import market_calendars, reference, statements, supply, webhooks  # noqa: F401
