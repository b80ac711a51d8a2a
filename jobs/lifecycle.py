"""A job's life on the workers, in one place: claim it (lease), beat while running, record the outcome.

Delivery is at least once (late acks, redelivery after a dead worker, the reconciler re-enqueueing what Redis
lost), so the same job can arrive twice. The lease makes that harmless: a worker claims a job by a
compare-and-set on its attempt counter and then writes a heartbeat every ``heartbeat_s``. A copy that arrives
while the holder still beats is dropped; a copy that finds the heartbeat stale takes over (the holder died).
A job that has stopped its worker ``max_attempts`` times (segfaulting input, hard time limit), or whose attempt
began longer ago than its hard time limit, fails with a reason instead of taking workers down forever
(:func:`abandon_reason`, the one rule).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobs.errors import ErrorCode
from jobs.models import Job, aware, utcnow
from jobs.moves import move_job
from jobs.settings import Settings
from jobs.states import JobStatus

#: Missed heartbeats after which a running job's worker counts as gone.
STALE_AFTER_BEATS = 3


class Claim(str, Enum):
    RUN = "run"  # this worker holds the job now
    GONE = "gone"  # finished, canceled or deleted: nothing to do
    BUSY = "busy"  # another live worker holds it
    ABANDONED = "abandoned"  # failed now: it stopped its workers too often or ran out of time


def is_stale(job: Job, settings: Settings, now: datetime) -> bool:
    beat = aware(job.heartbeat_at)
    return beat is None or now - beat > timedelta(seconds=STALE_AFTER_BEATS * settings.heartbeat_s)


def abandon_reason(job: Job, settings: Settings, now: datetime) -> str | None:
    """Why a running job whose worker went silent must fail instead of running again, or None to run it again.

    The one rule, used by :func:`claim` (a copy of the job's message arrives) and by the reconciler (no message is
    left): a job that stopped ``max_attempts`` workers fails, and so does an attempt that began longer ago than the
    kind's hard time limit, since Celery kills a task at that limit and a job that long silent has had its time.
    Both paths decide alike, so the outcome never depends on whether the broker still held the message.
    """
    if job.attempts >= settings.max_attempts:
        return (f"the job stopped its worker {job.attempts} time(s) (the worker crashed or the job hit its hard time "
                "limit); it is not retried again")
    limit = settings.time_limits()[job.kind]
    started = aware(job.started_at) or aware(job.created_at)
    if started is not None and now - started > timedelta(seconds=limit):
        return f"the job's worker stopped and the job ran past its time limit of {limit} s"
    return None


def claim(session: Session, job_id: str, worker: str, settings: Settings, now: datetime | None = None) -> Claim:
    """Take the job for ``worker`` if nobody alive holds it (moving it to running)."""
    now = now or utcnow()
    job = session.get(Job, job_id)
    if job is None or JobStatus(job.status).finished:
        return Claim.GONE
    if job.status == JobStatus.RUNNING.value:
        if not is_stale(job, settings, now):
            return Claim.BUSY
        reason = abandon_reason(job, settings, now)
        if reason is not None:
            finish(session, job_id, JobStatus.FAILED, error_code=ErrorCode.WORKER_LOST.value, error_message=reason)
            return Claim.ABANDONED
    won = session.execute(
        update(Job).where(Job.id == job_id, Job.attempts == job.attempts, Job.status == job.status)
        .values(worker=worker, heartbeat_at=now).execution_options(synchronize_session=False)).rowcount == 1
    if not won:
        return Claim.BUSY
    if job.status == JobStatus.RUNNING.value:  # its worker died: run it again
        move_job(session, job, JobStatus.QUEUED)
    move_job(session, job, JobStatus.RUNNING)
    job.worker, job.heartbeat_at = worker, now
    return Claim.RUN


def beat(session: Session, job_id: str, worker: str, fields: dict[str, Any] | None = None) -> None:
    """Heartbeat (and optionally stage/progress) of a running job held by ``worker``."""
    values: dict[str, Any] = {"heartbeat_at": utcnow(), **(fields or {})}
    session.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                      Job.status == JobStatus.RUNNING.value).values(**values)
                    .execution_options(synchronize_session=False))


def finish(session: Session, job_id: str, status: JobStatus, **fields: Any) -> None:
    """Record a terminal status with its fields; a job already finished (canceled meanwhile) is left alone."""
    job = session.get(Job, job_id)
    if job is None or JobStatus(job.status).finished:
        return
    for name, value in fields.items():
        setattr(job, name, value)
    move_job(session, job, status)
