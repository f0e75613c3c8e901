"""The Django admin: readable lists, search and filters; changes go through model validation."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from audits import supply
from audits.models import (
    Asset,
    AssetPolicy,
    Chain,
    Custodian,
    CustodianUser,
    ExcludedAddress,
    Heartbeat,
    MultiplierChange,
    TokenDeployment,
)
from audits.tasks.supply import read_supply_for_deployment


class TokenDeploymentInline(admin.TabularInline):
    model = TokenDeployment
    extra = 0
    fields = ["chain", "address", "decimals", "active"]


class AssetPolicyInline(admin.StackedInline):
    """The asset's reconciliation policy; without one the defaults shown here apply."""

    model = AssetPolicy
    extra = 1
    max_num = 1
    can_delete = False


class MultiplierChangeInline(admin.TabularInline):
    """Corporate actions, newest first. Rows are added, never edited or deleted: stored
    reconciliations rest on this history (recomputing one would no longer match)."""

    model = MultiplierChange
    extra = 0
    can_delete = False
    fields = ["effective_at", "shares_per_token", "kind", "note", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    ordering = ["-effective_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "isin", "kind", "mic", "decimals", "shares_per_token",
                    "active", "supply_across_chains"]  # fmt: skip
    list_filter = ["kind", "active", "mic"]
    search_fields = ["code", "name", "isin"]
    readonly_fields = ["supply_across_chains"]
    inlines = [TokenDeploymentInline, AssetPolicyInline, MultiplierChangeInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is MultiplierChange:
            for change_row in formset.save(commit=False):
                if change_row.pk is None:
                    change_row.created_by = request.user
                change_row.save()
            formset.save_m2m()
            return
        super().save_formset(request, form, formset, change)

    @admin.display(description="circulating supply, all chains")
    def supply_across_chains(self, obj: Asset):
        if obj.pk is None:
            return "—"
        row = supply.asset_supply(obj)
        link = reverse("admin:audits_supplyreading_by_asset")
        if row.circulating is None:
            return format_html('<a href="{}">no total</a>: {}', link, row.reason)
        manual = " (includes issuer-reported)" if row.includes_manual else ""
        return format_html('<a href="{}">{}</a>{}', link, row.circulating, manual)


class CustodianUserInline(admin.TabularInline):
    model = CustodianUser
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Custodian)
class CustodianAdmin(admin.ModelAdmin):
    list_display = ["name", "lei", "contact", "active"]
    list_filter = ["active"]
    search_fields = ["name", "lei", "contact"]
    inlines = [CustodianUserInline]


@admin.register(CustodianUser)
class CustodianUserAdmin(admin.ModelAdmin):
    list_display = ["user", "custodian"]
    list_filter = ["custodian"]
    search_fields = ["user__username", "user__email", "custodian__name"]
    autocomplete_fields = ["user"]


class ChainForm(forms.ModelForm):
    class Meta:
        model = Chain
        fields = ["chain_id", "name", "active", "rpc_urls", "confirmations", "rpc_timeout"]

    def clean(self):
        data = super().clean()
        chain_id, confirmations = data.get("chain_id"), data.get("confirmations")
        if chain_id is not None and confirmations is not None:
            minimum = supply.minimum_confirmations(chain_id)
            if confirmations < minimum:
                self.add_error(
                    "confirmations",
                    f"At least {minimum} for chain {chain_id}: a reading fewer blocks deep can "
                    "be reorganised away after it was counted (SUPPLY_MIN_CONFIRMATIONS).",
                )
        return data


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    form = ChainForm
    list_display = ["chain_id", "name", "endpoints", "confirmations", "rpc_timeout", "active"]
    list_filter = ["active"]
    search_fields = ["name", "=chain_id"]
    fields = ["chain_id", "name", "active", "endpoints", "rpc_urls", "confirmations", "rpc_timeout"]
    readonly_fields = ["endpoints"]

    @admin.display(description="RPC endpoints (redacted)")
    def endpoints(self, obj: Chain) -> str:
        # Only scheme://host[:port]: keys live in paths, queries and userinfo.
        return ", ".join(supply.redacted_rpc_urls(obj)) or "none (manual supply only)"


class ExcludedAddressInline(admin.TabularInline):
    model = ExcludedAddress
    extra = 0
    fields = ["address", "label", "active"]


@admin.register(TokenDeployment)
class TokenDeploymentAdmin(admin.ModelAdmin):
    list_display = ["asset", "chain", "address", "decimals", "active"]
    list_filter = ["chain", "active", "asset__kind"]
    search_fields = ["asset__code", "asset__name", "address"]
    list_select_related = ["asset", "chain"]
    inlines = [ExcludedAddressInline]
    actions = ["read_supply_now"]

    @admin.action(description="Read supply now")
    def read_supply_now(self, request, queryset) -> None:
        readable = list(queryset.filter(chain__rpc_urls__gt="").values_list("id", flat=True))
        ids = supply.claim_for_reading(readable)
        for deployment_id in ids:
            # Sent after commit: the worker must see what this request saved.
            read_supply_for_deployment.delay_on_commit(deployment_id)
        self.message_user(request, f"Queued {len(ids)} supply read(s).", messages.SUCCESS)
        if in_flight := len(readable) - len(ids):
            self.message_user(request, f"{in_flight} read(s) already in progress.", messages.INFO)
        if skipped := queryset.count() - len(readable):
            self.message_user(
                request,
                f"{skipped} deployment(s) are on chains without an RPC URL: enter their "
                "supply manually.",
                messages.WARNING,
            )


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["component", "hostname", "last_seen"]
    readonly_fields = ["component", "hostname", "last_seen"]

    def has_add_permission(self, request) -> bool:
        return False
