"""Exchange closures admins enter because the calendar library does not know them yet."""

from django.conf import settings
from django.db import models

from audits.validators import validate_mic


class MarketClosure(models.Model):
    """A day an exchange did not trade although the library's calendar says it would.

    exchange_calendars knows scheduled holidays, early closes and ad-hoc closures up to its
    release; an unscheduled closure after that (a storm, a national day of mourning) is
    entered here, and statement ages then skip that day like a holiday.
    """

    mic = models.CharField(
        "exchange (MIC)",
        max_length=4,
        validators=[validate_mic],
        help_text="ISO 10383 MIC of the exchange, e.g. XNYS.",
    )
    date = models.DateField(help_text="The trading day the exchange stayed closed (local date).")
    reason = models.CharField(max_length=200, help_text="Why, e.g. 'National Day of Mourning'.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(fields=["mic", "date"], name="market_closure_unique_mic_date")
        ]

    def __str__(self) -> str:
        return f"{self.mic} closed {self.date:%Y-%m-%d}"
