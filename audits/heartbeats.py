"""Background components report that they are alive."""

from __future__ import annotations

from django.utils import timezone

from audits.models import Heartbeat


def beat(component: str, hostname: str) -> Heartbeat:
    """Record that `component` on `hostname` is alive now."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        component=component, defaults={"hostname": hostname, "last_seen": timezone.now()}
    )
    return heartbeat
