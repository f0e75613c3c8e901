"""The Django admin: readable lists, search and filters; changes go through model validation."""

from django.contrib import admin

from audits.models import (
    Asset,
    Chain,
    Custodian,
    CustodianUser,
    Heartbeat,
    TokenDeployment,
)


class TokenDeploymentInline(admin.TabularInline):
    model = TokenDeployment
    extra = 0
    fields = ["chain", "address", "decimals", "active"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "isin", "kind", "decimals", "shares_per_token", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name", "isin"]
    inlines = [TokenDeploymentInline]


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


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ["chain_id", "name", "active"]
    list_filter = ["active"]
    search_fields = ["name", "=chain_id"]


@admin.register(TokenDeployment)
class TokenDeploymentAdmin(admin.ModelAdmin):
    list_display = ["asset", "chain", "address", "decimals", "active"]
    list_filter = ["chain", "active", "asset__kind"]
    search_fields = ["asset__code", "asset__name", "address"]
    list_select_related = ["asset", "chain"]


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["component", "hostname", "last_seen"]
    readonly_fields = ["component", "hostname", "last_seen"]

    def has_add_permission(self, request) -> bool:
        return False
