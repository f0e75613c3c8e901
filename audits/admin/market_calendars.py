"""Admin for exchange closures the calendar library does not know (MarketClosure)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from audits.core.market_hours import OutsideCalendar, UnknownExchange, scheduled_session
from audits.models import MarketClosure

_WHEN = (
    "Statement ages are counted in trading sessions of the asset's home exchange, from the "
    "exchange-calendars library, which already knows weekends, holidays, early closes and past "
    "unscheduled closures. Add a closure here only when an exchange stays closed on a day the "
    "library expects it to trade: an unscheduled closure announced after the library's release "
    "(a storm, a national day of mourning). The day then counts like a holiday at once: "
    "statements are not expected to be refreshed for it. Do not add weekends or holidays."
)


class MarketClosureForm(forms.ModelForm):
    class Meta:
        model = MarketClosure
        fields = ["mic", "date", "reason"]

    def clean(self):
        cleaned = super().clean()
        mic, day = cleaned.get("mic"), cleaned.get("date")
        if mic and day and "mic" not in self.errors:
            try:
                trades = scheduled_session(mic, day)
            except (UnknownExchange, OutsideCalendar):
                trades = True  # beyond the library's years: nothing to compare against
            if not trades:
                self.add_error(
                    "date",
                    f"{mic} does not trade on {day:%Y-%m-%d} anyway (a weekend, holiday or "
                    "closure the calendar already knows); no closure is needed.",
                )
        return cleaned


@admin.register(MarketClosure)
class MarketClosureAdmin(admin.ModelAdmin):
    form = MarketClosureForm
    list_display = ["mic", "date", "reason", "created_by", "created_at"]
    list_filter = ["mic"]
    search_fields = ["mic", "reason"]
    date_hierarchy = "date"
    readonly_fields = ["created_by", "created_at"]
    fieldsets = [(None, {"description": _WHEN, "fields": ["mic", "date", "reason"]}),
                 ("Recorded", {"fields": ["created_by", "created_at"]})]  # fmt: skip

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
