"""Signed attestations and their public keys in the admin: read-only, with downloads.

Attestations are append-only (model and, on PostgreSQL, a trigger); keys are registered by
the service from the configured PEM files, so only their public parts are here.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from audits import attestation_keys
from audits.admin.readonly import ReadOnlyAdmin
from audits.models import Attestation, AttestationKey

_ATTESTATION_FIELDS = ("sequence", "issued_at", "reason", "key", "previous", "payload_sha256",
                       "downloads", "figures", "subject_list")  # fmt: skip
_KEY_FIELDS = ("kid", "public_x", "not_before", "not_after", "revoked_at", "note", "created_at")


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


@admin.register(AttestationKey)
class AttestationKeyAdmin(ReadOnlyAdmin):
    list_display = ["kid", "public_x", "not_before", "not_after", "revoked_at", "note"]
    fields = _KEY_FIELDS
    readonly_fields = _KEY_FIELDS

    @admin.display(description="public key (x)")
    def public_x(self, obj: AttestationKey) -> str:
        return attestation_keys.public_x(obj)
