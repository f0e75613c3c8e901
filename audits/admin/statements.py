"""Admin for statements, their lines, custodian signing keys and API tokens.

Statements are evidence: nothing here edits or deletes one. Admins upload on a custodian's
behalf (labelled as such), download the raw bytes and reject with a reason.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from audits import statements, tokens
from audits.admin.readonly import ReadOnlyAdmin
from audits.choices import StatementFormat, StatementStatus
from audits.core import custodian_signatures
from audits.core.statement_formats import RESERVE_BALANCE_TYPES
from audits.downloads import raw_download
from audits.models import ApiToken, Custodian, CustodianKey, CustodianStatement, StatementLine


class AdminUploadForm(forms.Form):
    custodian = forms.ModelChoiceField(queryset=Custodian.objects.filter(active=True))
    file = forms.FileField(allow_empty_file=True)
    format = forms.ChoiceField(choices=StatementFormat.choices)
    as_of = forms.CharField(
        required=False,
        max_length=40,
        help_text="With its UTC offset, e.g. 2026-11-24T21:00:00Z. Required for CSV.",
    )
    signature = forms.CharField(
        required=False,
        max_length=200,
        help_text="Optional detached Ed25519 signature: KEYID:BASE64.",
    )

    def clean(self):
        cleaned = super().clean()
        if "format" in cleaned:
            try:
                cleaned["as_of"] = statements.clean_form_as_of(
                    cleaned["format"], cleaned.get("as_of") or ""
                )
            except ValueError as exc:
                self.add_error("as_of", str(exc))
        return cleaned


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


_DETAIL_FIELDS = (
    "custodian", "as_of", "declared_as_of", "received_at", "uploaded_by", "format", "status",
    "counts_for", "source", "signature_status", "signature_key", "signature_header", "sha256",
    "raw_link", "line_count", "superseded_by", "retry_of", "retries", "rejected_by", "pages",
    "check_attempts", "check_error", "errors",
    "holdings",
)  # fmt: skip


class OverdueIncompleteFilter(admin.SimpleListFilter):
    title = "pages missing past the deadline"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        deadline = settings.STATEMENT_PAGES_DEADLINE
        return [("yes", f"incomplete for more than {deadline}")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return statements.overdue_incomplete(queryset)
        return queryset


class StatementChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        statements.mark_counting(self.result_list)


@admin.register(CustodianStatement)
class CustodianStatementAdmin(admin.ModelAdmin):
    list_display = ["id", "custodian", "as_of", "format", "status", "counts_for", "source",
                    "signature_status", "line_count", "pages", "check_attempts", "received_at",
                    "raw_link"]  # fmt: skip
    list_filter = [OverdueIncompleteFilter, "custodian", "status", "source", "format",
                   "signature_status", "as_of"]  # fmt: skip
    date_hierarchy = "as_of"
    search_fields = ["=id", "custodian__name", "custodian__lei", "raw__sha256"]
    list_select_related = ["custodian", "raw"]
    actions = ["reject_selected", "resume_selected", "retry_failed"]
    fields = _DETAIL_FIELDS
    readonly_fields = _DETAIL_FIELDS

    def get_queryset(self, request):
        pages = CustodianStatement.objects.defer("raw__content").order_by("page_no")
        return (
            super()
            .get_queryset(request)
            .defer("raw__content")
            .prefetch_related(Prefetch("pages", queryset=pages))
        )

    def get_changelist(self, request, **kwargs):
        return StatementChangeList

    @admin.display(description="counts as reserves for")
    def counts_for(self, obj: CustodianStatement) -> str:
        if not hasattr(obj, "counts_for"):
            statements.mark_counting([obj])
        if not obj.counts_for:
            return "—"
        return format_html_join(", ", "<strong>{}</strong>", ((a.code,) for a in obj.counts_for))

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="SHA-256")
    def sha256(self, obj: CustodianStatement) -> str:
        return obj.raw.sha256 if obj.raw is not None else "— (one per page)"

    @admin.display(description="raw file")
    def raw_link(self, obj: CustodianStatement) -> str:
        if obj.raw is None:
            return "— (one per page)"
        url = reverse("admin:audits_custodianstatement_raw", args=[obj.pk])
        return format_html('<a href="{}">download ({} bytes)</a>', url, obj.raw.size)

    @admin.display(description="pages")
    def pages(self, obj: CustodianStatement) -> str:
        if obj.part_of_id is not None:
            url = reverse("admin:audits_custodianstatement_change", args=[obj.part_of_id])
            return format_html('page {} of <a href="{}">#{}</a>', obj.page_no, url, obj.part_of_id)
        progress = statements.page_progress(obj)
        if progress is None:
            return "—"
        flag = ""
        if statements.is_overdue(obj):
            flag = format_html(
                ' <strong class="por-overdue">OVERDUE: incomplete for more than {}</strong>',
                settings.STATEMENT_PAGES_DEADLINE,
            )
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:audits_custodianstatement_change", args=[p.pk]), p.page_no)
                for p in obj.pages.all()
                if p.status == StatementStatus.PAGE
            ),
        )
        return format_html("{} (id {}; pages {}){}", progress.summary, obj.statement_ref,
                           links or "none", flag)  # fmt: skip

    @admin.display(description="sent again as")
    def retries(self, obj: CustodianStatement) -> str:
        return (
            format_html_join(
                ", ",
                '<a href="{}">#{}</a> ({})',
                (
                    (reverse("admin:audits_custodianstatement_change", args=[r.pk]), r.pk, r.status)
                    for r in obj.retries.order_by("pk")
                ),
            )
            or "—"
        )

    @admin.display(description="errors")
    def errors(self, obj: CustodianStatement) -> str:
        if not obj.rejection_report:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            ((e.get("line") or "—", e.get("field") or "—", e["message"])
             for e in obj.rejection_report),
        )  # fmt: skip
        return format_html(
            "<table><tr><th>line</th><th>field</th><th>problem</th></tr>{}</table>", rows
        )

    @admin.display(description="holdings (settled count as reserve)")
    def holdings(self, obj: CustodianStatement) -> str:
        summary = statements.holdings_summary(obj)
        if not summary:
            return "—"
        if not hasattr(obj, "counts_for"):
            statements.mark_counting([obj])
        counting = {asset.code for asset in obj.counts_for}
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r["asset__code"], r["balance_type"], statements.plain_decimal(r["quantity"]),
              r["lines"],
              "yes" if r["balance_type"] in RESERVE_BALANCE_TYPES and r["asset__code"] in counting
              else "no")
             for r in summary),
        )  # fmt: skip
        lines_url = (
            reverse("admin:audits_statementline_changelist") + f"?statement__id__exact={obj.pk}"
        )
        return format_html(
            "<table><tr><th>asset</th><th>balance type</th><th>quantity</th><th>lines</th>"
            '<th>counts as reserves now</th></tr>{}</table><a href="{}">all lines</a>',
            rows,
            lines_url,
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("upload/", view(self.upload_view), name="audits_custodianstatement_upload"),
            path("<int:pk>/raw/", view(self.raw_view), name="audits_custodianstatement_raw"),
        ]
        return custom + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:audits_custodianstatement_upload")

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("audits.add_custodianstatement")

    def upload_view(self, request):
        """Enter a statement on a custodian's behalf; it is labelled as such."""
        if not self.has_add_permission(request):
            return redirect("admin:index")
        form = AdminUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                submission = statements.submit_statement(
                    custodian=data["custodian"],
                    user=request.user,
                    raw=data["file"].read(),
                    fmt=data["format"],
                    as_of=data["as_of"],
                    signature_header=data["signature"] or None,
                )
            except statements.UploadTooLarge as exc:
                form.add_error("file", str(exc))
            else:
                statement = submission.statement
                level = messages.SUCCESS if statement.status == "accepted" else messages.WARNING
                progress = statements.page_progress(statement)
                note = f" ({progress.summary})" if progress else ""
                if not submission.created:
                    note += " — a repeat of an earlier upload"
                    note += ", queued for checking again" * submission.requeued
                self.message_user(
                    request, f"Statement #{statement.pk}: {statement.status}{note}.", level
                )
                return redirect("admin:audits_custodianstatement_change", statement.pk)
        context = {**self.admin_site.each_context(request), "title": "Upload a statement",
                   "form": form, "opts": self.model._meta}  # fmt: skip
        return render(request, "admin/audits/statement_upload.html", context)

    def raw_view(self, request, pk: int):
        statement = get_object_or_404(
            CustodianStatement.objects.select_related("raw").exclude(raw=None), pk=pk
        )
        return raw_download(statements.raw_file(statement))

    @admin.action(description="Reject selected statements (asks for a reason)")
    def reject_selected(self, request, queryset):
        if "apply" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                for statement in queryset:
                    statements.reject_statement(
                        statement, request.user, form.cleaned_data["reason"]
                    )
                self.message_user(request, f"Rejected {queryset.count()} statement(s).")
                return None
        else:
            form = RejectForm()
        selected = list(queryset.select_related("custodian"))
        preview = statements.preview_rejection(selected, request.user)
        context = {**self.admin_site.each_context(request), "title": "Reject statements",
                   "form": form, "statements": [(s, preview[s.pk]) for s in selected],
                   "opts": self.model._meta,
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}  # fmt: skip
        return render(request, "admin/audits/statement_reject.html", context)

    @admin.action(description="Finish checking selected statements still received")
    def resume_selected(self, request, queryset):
        waiting = list(
            queryset.filter(status=StatementStatus.RECEIVED).values_list("pk", flat=True)
        )
        done = [statements.resume_statement(pk) for pk in waiting]
        outcome = ", ".join(f"{s.pk}: {s.status}" for s in done) or "none"
        self.message_user(
            request,
            f"Checked {len(done)} statement(s) still received ({outcome}); "
            f"{queryset.count() - len(done)} selected were already decided and left as they are.",
        )

    @admin.action(description="Re-try selected failed statements (fresh attempts)")
    def retry_failed(self, request, queryset):
        failed = list(queryset.filter(status=StatementStatus.FAILED).values_list("pk", flat=True))
        done = [statements.retry_statement(pk) for pk in failed]
        outcome = ", ".join(f"{s.pk}: {s.status}" for s in done) or "none"
        self.message_user(request, f"Re-tried {len(done)} failed statement(s) ({outcome}).")


@admin.register(StatementLine)
class StatementLineAdmin(ReadOnlyAdmin):
    list_display = ["statement", "page", "line_no", "isin", "asset", "plain_quantity", "account",
                    "balance_type"]  # fmt: skip
    list_filter = ["balance_type", "asset", "statement__custodian"]
    search_fields = ["isin", "account", "=statement__id"]
    list_select_related = ["statement__custodian", "asset"]
    fields = ["statement", "line_no", "isin", "asset", "plain_quantity", "account", "balance_type"]
    readonly_fields = ["statement", "line_no", "isin", "asset", "plain_quantity", "account",
                       "balance_type"]  # fmt: skip

    # Not sortable: on SQLite quantities are text (see ExactDecimalField).
    @admin.display(description="quantity")
    def plain_quantity(self, obj: StatementLine) -> str:
        return statements.plain_decimal(obj.quantity)


class CustodianKeyForm(forms.ModelForm):
    public_key_text = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        help_text="Ed25519 public key: PEM, OpenSSH, hex or base64 of the 32 raw bytes.",
    )

    class Meta:
        model = CustodianKey
        fields = ["custodian", "label"]

    def clean_public_key_text(self) -> bytes:
        try:
            return custodian_signatures.load_public_key(self.cleaned_data["public_key_text"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        cleaned = super().clean()
        raw = cleaned.get("public_key_text")
        if raw and CustodianKey.objects.filter(key_id=custodian_signatures.key_id(raw)).exists():
            raise forms.ValidationError("This key is already registered.")
        return cleaned

    def save(self, commit=True):
        raw = self.cleaned_data["public_key_text"]
        self.instance.public_key = raw
        self.instance.key_id = custodian_signatures.key_id(raw)
        return super().save(commit)


@admin.register(CustodianKey)
class CustodianKeyAdmin(admin.ModelAdmin):
    list_display = ["key_id", "custodian", "label", "created_at", "revoked_at"]
    list_filter = ["custodian", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["key_id", "label", "custodian__name"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = CustodianKeyForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["custodian", "key_id", "created_at"] if obj else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # statements refer to the key that signed them

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Custodian users, and platform operators (liability snapshots).
        self.fields["user"].queryset = get_user_model().objects.filter(
            Q(custodian_link__isnull=False) | Q(platform_operator__isnull=False), is_active=True
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "user",
        "custodian",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["user__custodian_link__custodian", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user__custodian_link__custodian"]
    actions = ["revoke"]

    @admin.display(description="custodian")
    def custodian(self, obj: ApiToken):
        link = getattr(obj.user, "custodian_link", None)
        return link.custodian if link is not None else "— (platform operator)"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "prefix", "created_at", "last_used_at"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, secret = tokens.create_token(form.cleaned_data["user"], form.cleaned_data["name"])
        obj.pk = token.pk
        self.message_user(
            request,
            f"Token created for {token.user}. Copy it now, it will not be shown again: {secret}",
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            tokens.revoke(token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
