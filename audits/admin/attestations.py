"""Signed attestations and their public keys in the admin: read-only, with downloads.

Attestations are append-only (model and, on PostgreSQL, a trigger); keys are registered by
the service from the configured PEM files, so only their public parts are here.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from audits import attestation_keys
from audits.admin.readonly import ReadOnlyAdmin, confirmation_page
from audits.admin.reconciliation import ReasonForm
from audits.models import Attestation, AttestationKey

_ATTESTATION_FIELDS = ("sequence", "issued_at", "reason", "key", "previous", "payload_sha256",
                       "downloads", "figures", "subject_list")  # fmt: skip
_KEY_FIELDS = ("kid", "public_x", "not_before", "not_after", "retired_by", "retire_reason",
               "revoked_at", "revoked_by", "revoke_reason", "signing_now", "signed", "note",
               "created_at")  # fmt: skip


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "issued_at", "reason", "key", "payload_sha256", "downloads"]
    list_filter = ["reason"]
    list_select_related = ["key"]
    date_hierarchy = "issued_at"
    fields = _ATTESTATION_FIELDS
    readonly_fields = _ATTESTATION_FIELDS

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/<str:part>/",
                self.admin_site.admin_view(self.download),
                name="audits_attestation_download",
            ),
            *super().get_urls(),
        ]

    def download(self, request, pk: int, part: str) -> HttpResponse:
        if not self.has_view_permission(request) or part not in ("envelope", "payload"):
            return HttpResponse(status=404)
        attestation = get_object_or_404(Attestation, pk=pk)
        if part == "envelope":
            body, name = attestation.envelope.encode(), f"attestation-{attestation.sequence}.json"
        else:
            body = bytes(attestation.payload)
            name = f"attestation-{attestation.sequence}.payload.json"
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.display(description="download")
    def downloads(self, obj: Attestation):
        return format_html(
            '<a href="{}">envelope</a> · <a href="{}">payload</a>',
            reverse("admin:audits_attestation_download", args=[obj.pk, "envelope"]),
            reverse("admin:audits_attestation_download", args=[obj.pk, "payload"]),
        )

    @admin.display(description="assets")
    def figures(self, obj: Attestation):
        assets = json.loads(bytes(obj.payload))["predicate"].get("assets", [])
        head = format_html_join(
            "", "<th>{}</th>", ((h,) for h in ("asset", "status", "state", "haircut (bps)",
                                               "reserves", "supply", "ratio"))
        )  # fmt: skip
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (a["code"], a["status"] or "—", a["state"], a["haircut_bps"],
                 a["reserves"] or "—", a["supply"] or "—", a["ratio"] or "—")
                for a in assets
            ),
        )  # fmt: skip
        return format_html("<table><tr>{}</tr>{}</table>", head, rows)

    @admin.display(description="subjects (evidence files)")
    def subject_list(self, obj: Attestation):
        return format_html_join(
            "", "<div><code>{}</code> sha256:{}</div>", ((n, d) for n, d in obj.subjects)
        )


class KeyChangeForm(ReasonForm):
    when = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        help_text="Blank: now. Format 2026-11-29 17:00:00.",
    )
    field_order = ["when", "reason"]


_RETIRE_INTRO = (
    "A retired key signs nothing from the time given, and every attestation it signed before "
    "still verifies (it stays in the JWKS with its end time). Refused if the key already "
    "signed an attestation at or after that time. Put the new key first in "
    "ATTESTATION_KEY_FILES before retiring the one that signs now, or issuance stops."
)
_REVOKE_INTRO = (
    "Revoke a key that may have leaked. Give the time from which it must no longer be "
    "trusted (the earliest possible leak, which may be in the past): attestations it signed "
    "from then on stop verifying, earlier ones still verify, and the hash chain lets "
    "verifiers spot one slipped in before that time. This cannot be undone."
)


@admin.register(AttestationKey)
class AttestationKeyAdmin(ReadOnlyAdmin):
    list_display = ["kid", "public_x", "not_before", "not_after", "revoked_at", "signing_now",
                    "note"]  # fmt: skip
    fields = _KEY_FIELDS
    readonly_fields = _KEY_FIELDS
    actions = ["retire_selected", "revoke_selected"]

    def has_lifecycle_permission(self, request) -> bool:
        return request.user.has_perm("audits.change_attestationkey")

    @admin.display(description="signs now", boolean=True)
    def signing_now(self, obj: AttestationKey) -> bool:
        return obj.kid == attestation_keys.configured_kid()

    @admin.display(description="attestations signed")
    def signed(self, obj: AttestationKey) -> int:
        return obj.attestations.count()

    def _confirm(self, request, queryset, action: str, title: str, intro: str, call):
        form = KeyChangeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            signing = attestation_keys.configured_kid()
            for key in queryset:
                try:
                    note = call(key.pk, request.user, form.cleaned_data["reason"],
                                form.cleaned_data["when"])  # fmt: skip
                except attestation_keys.KeyChangeRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    continue
                self.message_user(request, f"{title}: {key.kid}. {note}", messages.SUCCESS)
                if key.kid == signing:
                    self.message_user(
                        request,
                        f"{key.kid} is the key in ATTESTATION_KEY_FILES: no attestation is "
                        "issued until a valid key is put first there.",
                        messages.WARNING,
                    )
            return None
        return confirmation_page(
            self, request, "admin/audits/attestation_key_confirm.html", title=title, intro=intro,
            rows=list(queryset), form=form, action=action,
        )  # fmt: skip

    @admin.action(description="Retire selected keys (asks for a time and a reason)",
                  permissions=["lifecycle"])  # fmt: skip
    def retire_selected(self, request, queryset):
        def retire(pk, user, reason, when) -> str:
            attestation_keys.retire(pk, user, reason, when)
            return "Old attestations still verify."

        return self._confirm(request, queryset, "retire_selected", "Retire keys",
                             _RETIRE_INTRO, retire)  # fmt: skip

    @admin.action(description="Revoke selected keys (key may have leaked)",
                  permissions=["lifecycle"])  # fmt: skip
    def revoke_selected(self, request, queryset):
        def revoke(pk, user, reason, when) -> str:
            _, invalidated = attestation_keys.revoke(pk, user, reason, when)
            return f"{invalidated} attestation(s) it signed from then on no longer verify."

        return self._confirm(request, queryset, "revoke_selected", "Revoke keys",
                             _REVOKE_INTRO, revoke)  # fmt: skip

    @admin.display(description="public key (x)")
    def public_x(self, obj: AttestationKey) -> str:
        return attestation_keys.public_x(obj)
