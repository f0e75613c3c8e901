"""A ModelAdmin that only shows: for evidence and history, which nobody edits in the admin."""

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.shortcuts import render


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def confirmation_page(model_admin, request, template: str, **context):
    """The page an admin action shows to ask for a reason before acting on the selected rows
    (``title``, ``intro``, ``rows``, ``form``, ``action``), inside the admin's frame."""
    return render(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            **context,
            "opts": model_admin.model._meta,
            "media": model_admin.media,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        },
    )
