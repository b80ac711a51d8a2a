"""A job moved to a new status, with what a finished status brings in the same transaction.

The status itself is the state machine's (``jobs.states``, through :meth:`jobs.models.Job.move_to`). A finished
status also records the job's webhook event (the outbox, ``jobs.webhooks``) and, for the last job of a batch,
closes the batch (``jobs.batches``): all in the caller's transaction, so none of them exists without the others.
This lives here, not in the ORM class, so that the models import no rule module.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from jobs import batches, webhooks
from jobs.models import Job
from jobs.states import JobStatus


def move_job(session: Session, job: Job, new: JobStatus | str) -> JobStatus:
    """Move ``job`` to ``new`` (raises ``IllegalTransition`` for a move the machine forbids); the new status."""
    status = job.move_to(new)
    if status.finished:
        webhooks.record_job_event(session, job, status)
        if job.batch_id:
            batches.job_finished(session, job)
    return status
