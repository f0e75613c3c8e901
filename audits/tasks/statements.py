"""Celery tasks for custodian statements: finish uploads that were interrupted mid-check."""

from celery import shared_task

from audits import statements
from audits.models import CustodianStatement


@shared_task(name="audits.tasks.resume_stalled_statements", ignore_result=True)
def resume_stalled_statements() -> int:
    """Queue one resume per statement left `received` too long; returns how many."""
    ids = statements.stalled_statements()
    for statement_id in ids:
        resume_statement.delay_on_commit(statement_id)
    return len(ids)


# acks_late: a worker killed mid-statement leaves the message to be redelivered, and a second
# run is harmless (the outcome is written only while the statement is still `received`).
@shared_task(name="audits.tasks.resume_statement", acks_late=True, ignore_result=True)
def resume_statement(statement_id: int) -> None:
    """Finish checking one stalled statement from its stored bytes."""
    try:
        statements.resume_statement(statement_id)
    except CustodianStatement.DoesNotExist:
        return  # statements are never deleted; nothing to do if this one is gone
