"""Operational state of the service itself."""

from django.db import models


class Heartbeat(models.Model):
    """Last time a background component proved it was alive by writing here."""

    component = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.component} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
