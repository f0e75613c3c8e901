"""The Django admin, one module per concept; importing registers the ModelAdmins."""

from audits.admin import reference, statements, supply, webhooks  # noqa: F401
