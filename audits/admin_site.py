from django.contrib import admin

from audits.permissions import is_admin


class PorappAdminSite(admin.AdminSite):
    """The admin, closed to custodian users even if one were flagged as staff by mistake."""

    site_header = "porapp administration"
    site_title = "porapp admin"
    index_title = "Proof of reserve"

    def has_permission(self, request) -> bool:
        return is_admin(request.user) and super().has_permission(request)
