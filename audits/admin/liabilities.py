"""Admin for liability snapshots (read-only, with an upload form) and platform operators.

A snapshot's secret is never shown: it is not among any admin's fields.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.html import format_html, format_html_join

from audits import liabilities, liability_files, statements
from audits.admin.readonly import ReadOnlyAdmin
from audits.models import LiabilitySnapshot, PlatformOperator

_CSS = {"all": ["porapp/admin.css"]}


class SnapshotUploadForm(forms.Form):
    file = forms.FileField(
        allow_empty_file=True, help_text="CSV with the header account_id,asset,balance."
    )
    as_of = forms.CharField(
        max_length=40, help_text="With its UTC offset, e.g. 2026-11-24T21:00:00Z."
    )

    def clean_as_of(self):
        try:
            return statements.parse_upload_as_of(self.cleaned_data["as_of"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


_DETAIL_FIELDS = (
    "as_of", "status_badge", "progress_text", "received_at", "uploaded_by", "published_at",
    "raw_name", "raw_sha256", "raw_size", "row_count", "error_count", "error_table", "failure",
    "attempts", "tree_table",
)  # fmt: skip


@admin.register(LiabilitySnapshot)
class LiabilitySnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "as_of", "status_badge", "progress_text", "row_count", "error_count",
                    "tree_count", "received_at", "uploaded_by"]  # fmt: skip
    list_filter = ["status", "as_of"]
    search_fields = ["=id", "raw_sha256"]
    list_select_related = ["uploaded_by"]
    date_hierarchy = "as_of"
    actions = ["retry_failed"]
    fields = _DETAIL_FIELDS
    readonly_fields = _DETAIL_FIELDS

    class Media:
        css = _CSS

    def get_queryset(self, request):
        return super().get_queryset(request).defer("secret").annotate(tree_total=Count("trees"))

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: LiabilitySnapshot) -> str:
        # The class carries the colour (static/porapp/admin.css): no inline style.
        return format_html(
            '<span class="por-badge por-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="progress")
    def progress_text(self, obj: LiabilitySnapshot) -> str:
        if obj.status in LiabilitySnapshot.FINAL:
            return obj.phase or "—"
        return f"{obj.phase or 'queued'}: {obj.progress} %"

    @admin.display(description="trees", ordering="tree_total")
    def tree_count(self, obj: LiabilitySnapshot) -> int:
        return obj.tree_total  # type: ignore[attr-defined]

    @admin.display(description="errors (first 1,000)")
    def error_table(self, obj: LiabilitySnapshot) -> str:
        if not obj.errors:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            ((e["line"], e["field"], e["message"]) for e in obj.errors),
        )
        more = ""
        if obj.error_count > len(obj.errors):
            more = format_html("<p>… and {} more.</p>", obj.error_count - len(obj.errors))
        return format_html(
            "<table><tr><th>line</th><th>field</th><th>problem</th></tr>{}</table>{}", rows, more
        )

    @admin.display(description="trees")
    def tree_table(self, obj: LiabilitySnapshot) -> str:
        trees = obj.trees.select_related("asset").order_by("asset__code")
        if not trees:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>"
            "<td><code>{}</code></td></tr>",
            (
                (t.asset.code, t.root_hash, int(t.root_sum), t.account_count, t.leaf_count,
                 t.file_sha256)
                for t in trees
            ),
        )  # fmt: skip
        return format_html(
            "<table><tr><th>asset</th><th>root hash</th><th>root sum (smallest units)</th>"
            "<th>accounts</th><th>leaves</th><th>tree file SHA-256</th></tr>{}</table>",
            rows,
        )

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("audits.add_liabilitysnapshot")

    @admin.action(description="Build selected failed snapshots again (fresh attempts)")
    def retry_failed(self, request, queryset):
        ids = list(
            queryset.filter(status=LiabilitySnapshot.Status.FAILED).values_list("pk", flat=True)
        )
        retried = [pk for pk in ids if liabilities.retry_failed(pk)]
        self.message_user(
            request,
            f"Queued {len(retried)} failed snapshot(s) for building again; "
            f"{queryset.count() - len(retried)} selected were not failed and are left as they are.",
        )

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:audits_liabilitysnapshot_upload")

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("upload/", view(self.upload_view), name="audits_liabilitysnapshot_upload"),
        ]
        return custom + super().get_urls()

    def upload_view(self, request):
        """Upload a snapshot file; it is stored, then built in the background."""
        if not self.has_add_permission(request):
            return redirect("admin:index")
        form = SnapshotUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                snapshot, created = liabilities.receive(
                    user=request.user,
                    chunks=form.cleaned_data["file"].chunks(),
                    as_of=form.cleaned_data["as_of"],
                )
            except liability_files.TooLarge as exc:
                form.add_error("file", str(exc))
            else:
                note = "queued for building" if created else "a repeat of this earlier upload"
                self.message_user(
                    request, f"Liability snapshot #{snapshot.pk}: {note}.", messages.SUCCESS
                )
                return redirect("admin:audits_liabilitysnapshot_change", snapshot.pk)
        context = {**self.admin_site.each_context(request), "title": "Upload a liability snapshot",
                   "form": form, "opts": self.model._meta}  # fmt: skip
        return render(request, "admin/audits/snapshot_upload.html", context)


class PlatformOperatorForm(forms.ModelForm):
    class Meta:
        model = PlatformOperator
        fields = ["user"]

    def clean_user(self):
        user = self.cleaned_data["user"]
        if hasattr(user, "custodian_link"):
            raise forms.ValidationError(
                "This user acts for a custodian; a platform operator must be a separate user."
            )
        return user


@admin.register(PlatformOperator)
class PlatformOperatorAdmin(admin.ModelAdmin):
    """Who may upload liability snapshots (and hold an API token for it)."""

    form = PlatformOperatorForm
    list_display = ["user", "created_at"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "created_at"] if obj else []
