"""Supply in the admin: readings (read-only evidence), manual entries, excluded addresses,
RPC endpoints shown redacted, and the latest supply of each asset across its chains."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from audits import supply
from audits.core.evm import to_tokens
from audits.models import (
    SupplyReading,
)


def _amount(reading: SupplyReading | None, raw_attr: str = "circulating_raw") -> str:
    """Whole tokens with the token's decimals; "—" (never 0) when there is no amount."""
    if reading is None:
        return "—"
    raw = getattr(reading, raw_attr)
    if raw is None or reading.decimals is None:
        return "—"
    return str(to_tokens(int(raw), reading.decimals))


def _depth(reading: SupplyReading) -> str:
    """Confirmations the read used, flagged when below the chain's minimum."""
    if reading.confirmations is None:
        return "—"
    minimum = supply.minimum_confirmations(reading.deployment.chain.chain_id)
    if reading.confirmations < minimum:
        return f"{reading.confirmations} (below the minimum {minimum})"
    return str(reading.confirmations)


def _when(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


# --------------------------------------------------------------------------- readings


class ManualReadingForm(forms.ModelForm):
    """An issuer-reported supply for a chain without RPC access."""

    supply = forms.DecimalField(
        label="issuer-reported supply (whole tokens)",
        min_value=0,
        max_digits=114,
        decimal_places=36,
        help_text="As reported by the issuer; exact to one base unit of the deployment.",
    )

    class Meta:
        model = SupplyReading
        fields = ["deployment", "supply", "as_of", "reference"]
        help_texts = {"reference": "Where the issuer reported it: URL, document, date."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["as_of"].required = True
        self.fields["as_of"].initial = timezone.now
        self.fields["reference"].required = True

    def clean(self):
        data = super().clean()
        deployment, amount = data.get("deployment"), data.get("supply")
        if deployment is not None and amount is not None:
            try:
                supply.tokens_to_raw(amount, deployment.decimals)
            except ValidationError as exc:
                self.add_error("supply", exc)
        return data


@admin.register(SupplyReading)
class SupplyReadingAdmin(admin.ModelAdmin):
    list_display = [
        "taken", "last_confirmed", "asset", "chain", "source_label", "status",
        "block_number", "depth", "orphaned", "total", "circulating_supply", "error_short",
        "attempts", "rpc",
    ]  # fmt: skip
    list_filter = [
        "status", "source", ("orphaned_at", admin.EmptyFieldListFilter), "deployment__chain",
        "deployment__asset",
    ]  # fmt: skip
    date_hierarchy = "attempted_at"
    search_fields = ["block_hash", "error", "reference", "deployment__address"]
    list_select_related = ["deployment__asset", "deployment__chain"]
    readonly_fields = [
        "deployment", "source_label", "status", "block_number", "block_hash", "block_timestamp",
        "as_of", "decimals", "total", "total_supply_raw", "excluded_balances", "excluded_raw",
        "circulating_supply", "circulating_raw", "rpc", "error", "retryable", "attempts",
        "attempted_at", "last_confirmed_at", "depth", "orphaned_at", "canonical_hash", "task_id",
        "reference", "entered_by",
    ]  # fmt: skip
    exclude = ["source", "total_supply", "circulating"]

    @admin.display(description="asset", ordering="deployment__asset__code")
    def asset(self, obj: SupplyReading) -> str:
        return obj.deployment.asset.code

    @admin.display(description="chain", ordering="deployment__chain__chain_id")
    def chain(self, obj: SupplyReading) -> str:
        return str(obj.deployment.chain)

    @admin.display(description="taken", ordering="attempted_at")
    def taken(self, obj: SupplyReading):
        return obj.attempted_at

    @admin.display(description="last confirmed", ordering="last_confirmed_at")
    def last_confirmed(self, obj: SupplyReading):
        return obj.last_confirmed_at if obj.status == "ok" else None

    @admin.display(description="confirmations", ordering="confirmations")
    def depth(self, obj: SupplyReading) -> str:
        return _depth(obj)

    @admin.display(description="orphaned", boolean=True, ordering="orphaned_at")
    def orphaned(self, obj: SupplyReading) -> bool | None:
        return obj.orphaned if obj.source == "chain" and obj.status == "ok" else None

    @admin.display(description="source", ordering="source")
    def source_label(self, obj: SupplyReading) -> str:
        return obj.get_source_display()

    @admin.display(description="total supply")
    def total(self, obj: SupplyReading) -> str:
        return _amount(obj, "total_supply_raw")

    @admin.display(description="circulating")
    def circulating_supply(self, obj: SupplyReading) -> str:
        return _amount(obj, "circulating_raw")

    @admin.display(description="error")
    def error_short(self, obj: SupplyReading) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:119] + "…"

    # Readings are evidence: never edited or deleted; new ones come from reads or the form.
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ManualReadingForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["deployment", "supply", "as_of", "reference"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        created = supply.record_manual_supply(
            form.cleaned_data["deployment"],
            form.cleaned_data["supply"],
            reference=form.cleaned_data["reference"],
            as_of=form.cleaned_data["as_of"],
            entered_by=request.user,
        )
        # The admin logs and redirects using `obj`: point it at the stored row.
        obj.pk = created.pk
        obj.__dict__.update(created.__dict__)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("by-asset/", view(self.by_asset_view), name="audits_supplyreading_by_asset"),
        ]
        return custom + super().get_urls()

    def by_asset_view(self, request):
        """Per asset: the latest reading on each chain, and the total only when all count."""
        context = {
            **self.admin_site.each_context(request),
            "title": "Supply across chains",
            "opts": self.model._meta,
            "body": _by_asset_table(supply.latest_supply_by_asset()),
        }
        return TemplateResponse(request, engines["django"].from_string(_BY_ASSET_PAGE), context)


# Inline rather than a template file: the page is one table inside the admin's layout.
_BY_ASSET_PAGE = (
    '{% extends "admin/base_site.html" %}'
    "{% block content %}"
    "<p>A chain counts while its latest reading is fresh (confirmed by a read within the "
    "staleness window) and no permanent error came after it; a failed, stale, missing or "
    "orphaned reading leaves the asset without a total (never a partial sum, never zero).</p>"
    "{{ body }}"
    "{% endblock %}"
)


def _by_asset_table(rows: list[supply.AssetSupply]):
    return format_html_join("", "{}", ((_asset_block(row),) for row in rows))


def _asset_block(row: supply.AssetSupply):
    if row.circulating is not None:
        label = " (includes issuer-reported (manual) figures)" if row.includes_manual else ""
        headline = format_html("circulating <strong>{}</strong>{}", row.circulating, label)
    else:
        headline = format_html("<strong>no total</strong>: {}", row.reason)
    chains = format_html_join(
        "",
        "<tr>" + "<td>{}</td>" * 9 + "</tr>",
        (
            (
                str(d.deployment.chain),
                d.state,
                d.reading.get_source_display() if d.reading else "—",
                d.reading.block_number if d.reading and d.reading.block_number is not None else "—",
                _depth(d.reading) if d.reading else "—",
                _when(d.reading.last_confirmed_at) if d.reading else "—",
                _amount(d.reading, "total_supply_raw"),
                _amount(d.reading),
                d.latest_error.error if d.latest_error else d.note,
            )
            for d in row.deployments
        ),
    )
    return format_html(
        "<h2>{}</h2><p>{}</p><table><thead><tr><th>chain</th><th>state</th><th>source</th>"
        "<th>block</th><th>confirmations</th><th>last confirmed</th><th>total supply</th>"
        "<th>circulating</th><th>error / note</th></tr></thead><tbody>{}</tbody></table>",
        row.asset.code,
        headline,
        chains,
    )
