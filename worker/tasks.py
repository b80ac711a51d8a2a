"""The job task: claim the job, beat while its handler runs, record how it ended (``worker.bookkeeping``).

Handlers write artifacts under keys of their own job and link them only in the success result, so a rerun
overwrites and a failure links nothing. A handler that splits its job (``worker.context.Split``) leaves the end to
its segments (``worker.segments``). The task is registered on the worker's Celery app by ``worker.app``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from jobs.db import unit_of_work
from jobs.lifecycle import Claim, claim
from jobs.logs import job_context
from jobs.models import Job, aware, utcnow
from jobs.states import JobKind, JobStatus
from worker.bookkeeping import Heartbeat, close_job, outcome_of, worker_name
from worker.context import JobContext, Split
from worker.handlers import HANDLERS

if TYPE_CHECKING:
    from worker.state import WorkerState

log = logging.getLogger(__name__)


def execute(job_id: str, state: WorkerState) -> JobStatus | None:
    """Run one job with its bookkeeping; the status it ended in (running: split into segments), or None when it
    was not run here. Every line logged meanwhile carries the job's id."""
    with job_context(job_id):
        return _execute(job_id, state)


def _execute(job_id: str, state: WorkerState) -> JobStatus | None:
    from jobs.metrics import JOB_WAIT_SECONDS  # not at import: the worker picks the metrics mode first

    settings, me = state.settings, worker_name()

    def take(session):
        outcome = claim(session, job_id, me, settings)
        job = session.get(Job, job_id)
        taken = (JobKind(job.kind), dict(job.params), job.owner, job.created_at, job.attempts)
        return outcome, taken if outcome is Claim.RUN else None

    outcome, taken = unit_of_work(state.sessions, take)
    if outcome is not Claim.RUN:
        log.info("job %s not run here: %s", job_id, outcome.value)
        return None
    kind, params, owner, created_at, attempts = taken
    started = time.monotonic()
    if attempts == 1:
        JOB_WAIT_SECONDS.labels(kind=kind.value).observe(max(0.0, (utcnow() - aware(created_at)).total_seconds()))
    log.info("job %s (%s) started, attempt %d", job_id, kind.value, attempts)
    with Heartbeat(state.sessions, job_id, me, settings.heartbeat_s) as heart:
        context = JobContext(job_id=job_id, params=params, state=state, progress=heart.progress, owner=owner)
        ending = outcome_of(lambda: HANDLERS[kind](context), kind, state, f"job {job_id}")
    if isinstance(ending, Split):  # its segments carry it on; the last of them records its end
        log.info("job %s (%s) split into %d segments", job_id, kind.value, ending.segments)
        return JobStatus.RUNNING
    return close_job(state, job_id, kind, ending, started)
