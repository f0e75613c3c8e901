"""The Django admin, one module per concept; importing registers the ModelAdmins."""

from audits.admin import market_calendars, reference, statements, supply  # noqa: F401
from audits.admin import reconciliation  # noqa: F401
