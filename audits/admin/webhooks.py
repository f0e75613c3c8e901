"""Webhooks in the admin: endpoints (secret shown once, at creation), deliveries with their
attempts, and the actions "re-enable" and "send again now"."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from audits import webhooks
from audits.choices import WebhookEventType
from audits.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.TypedMultipleChoiceField(
        choices=WebhookEventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None selected: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            webhooks.check_url(url)
        except webhooks.UnsafeURL as exc:
            raise ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "description", "active", "failing_since", "disabled_at"]
    list_filter = ["active"]
    search_fields = ["description", "url"]
    actions = ["re_enable"]

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "event_types"]
        if obj is None:
            return fields
        return [
            *fields,
            "active",
            "created_at",
            "created_by",
            "failing_since",
            "disabled_at",
            "disabled_reason",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["created_at", "created_by", "failing_since", "disabled_at", "disabled_reason"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            if "active" in form.changed_data and obj.active:
                webhooks.enable_endpoint(obj.pk)  # ticking "active" is a re-enable
            return None
        endpoint, secret = webhooks.create_endpoint(
            form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            description=form.cleaned_data["description"],
            created_by=request.user,
        )
        obj.pk = endpoint.pk
        self.message_user(
            request,
            f"Webhook endpoint created. Give its signing secret to the receiver now, it will "
            f"not be shown again: {secret}",
            messages.WARNING,
        )

    @admin.action(description="Re-enable selected endpoints")
    def re_enable(self, request, queryset):
        for endpoint in queryset:
            webhooks.enable_endpoint(endpoint.pk)
        self.message_user(
            request,
            f"Re-enabled {queryset.count()} endpoint(s). Failed deliveries stay failed; "
            "use “Send again now” on the ones still wanted.",
        )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = readonly_fields = (
        "started_at",
        "status_code",
        "latency_ms",
        "error",
        "response_excerpt",
        "next_retry_at",
    )
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "endpoint",
        "event_type",
        "msg_id",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["msg_id"]
    list_select_related = ["endpoint"]
    fields = readonly_fields = (
        "endpoint",
        "event_type",
        "msg_id",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "created_at",
        "delivered_at",
        "last_status_code",
        "body",
    )
    inlines = [WebhookAttemptInline]
    actions = ["send_again_now"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Send again now")
    def send_again_now(self, request, queryset):
        sent = [d.pk for d in queryset if webhooks.redeliver(d.pk)]
        skipped = queryset.count() - len(sent)
        text = f"Queued {len(sent)} delivery(ies) to be sent again now."
        if skipped:
            text += f" {skipped} skipped: endpoint disabled or a worker is sending it."
        self.message_user(request, text, messages.WARNING if skipped else messages.SUCCESS)
