"""Celery tasks for webhooks: one task per delivery, and the sweeper that finds due ones.

One task per delivery, each attempt bounded by WEBHOOK_TIMEOUT, so a slow receiver never
delays another subscriber. Production can give deliveries their own queue and workers:
CELERY_TASK_ROUTES = {"audits.tasks.deliver_webhook": {"queue": "webhooks"}}.
"""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from audits import webhooks

# Retries sooner than this are sent as a delayed task; later ones are left to the sweeper
# (every minute), so no broker holds hours-long countdowns.
_FOLLOW_UP_WITHIN = 300


# acks_late: a worker killed mid-delivery leaves the message to be redelivered; a second run
# is harmless, since only the worker that claims the delivery row sends it.
# The time limits (enforced by the prefork pool) stay below the claim lease (webhooks.lease()).
@shared_task(
    name="audits.tasks.deliver_webhook",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.WEBHOOK_TIMEOUT + 30,
    time_limit=settings.WEBHOOK_TIMEOUT + 45,
)
def deliver_webhook(delivery_id: int) -> None:
    """Attempt one webhook delivery; its retry schedule is kept in the database."""
    next_at = webhooks.deliver(delivery_id)
    if next_at is None:
        return
    countdown = max(0.0, (next_at - timezone.now()).total_seconds())
    if countdown <= _FOLLOW_UP_WITHIN:
        deliver_webhook.apply_async(args=[delivery_id], countdown=countdown)


@shared_task(name="audits.tasks.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks() -> int:
    """Queue a delivery task for every due, unclaimed delivery; returns how many."""
    ids = webhooks.due_deliveries()
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)
    return len(ids)
