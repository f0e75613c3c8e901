"""Celery task for signed attestations."""

from celery import shared_task

from audits import attestations


# Idempotent: whether one is due is judged under the issuance lock, so a redelivered or
# duplicate message issues nothing more; a worker killed mid-way rolls back (acks_late).
@shared_task(
    name="audits.tasks.issue_attestation",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def issue_attestation() -> int | None:
    if not attestations.enabled():
        return None
    attestation = attestations.issue_if_due()
    return attestation.sequence if attestation else None
