"""The Django admin, one module per concept; importing registers the ModelAdmins."""

from audits.admin import reference, statements, supply  # noqa: F401
