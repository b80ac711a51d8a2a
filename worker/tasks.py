"""The one task, and the one place for job bookkeeping: mark running, call the handler, record the outcome.

Delivery is at least once (late acks): a job whose worker died is delivered again and found ``running``; it is
moved back to ``queued`` and run again. Handlers write their artifacts under deterministic keys, so a rerun
overwrites instead of duplicating. A job already finished or canceled is left alone.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import sessionmaker

from jobs.db import make_engine, session_scope
from jobs.models import Job
from jobs.queue import TASK_NAME
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from jobs.storage import open_storage
from worker import celery
from worker.handlers import HANDLERS, JobContext, JobFailed

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}


def _services() -> tuple[Settings, sessionmaker, Any]:
    """Settings, sessions and storage, built once per worker process."""
    if not _state:
        settings = Settings.from_env()
        _state.update(settings=settings, sessions=sessionmaker(make_engine(settings.database_url),
                                                               expire_on_commit=False),
                      storage=open_storage(settings))
    return _state["settings"], _state["sessions"], _state["storage"]


def _finish(sessions: sessionmaker, job_id: str, status: JobStatus, **fields: Any) -> None:
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        if job is None or JobStatus(job.status).finished:
            return
        for name, value in fields.items():
            setattr(job, name, value)
        job.move_to(status)


@celery.task(name=TASK_NAME, bind=True)
def run_job(self, job_id: str) -> None:
    settings, sessions, storage = _services()
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        if job is None or JobStatus(job.status).finished:
            log.info("job %s is gone or finished; nothing to do", job_id)
            return
        if job.status == JobStatus.RUNNING.value:  # redelivered after a worker died
            job.move_to(JobStatus.QUEUED)
        job.move_to(JobStatus.RUNNING)
        kind, params = JobKind(job.kind), dict(job.params)
    last = [0.0]

    def progress(stage: str, percent: float) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0 and percent < 100:
            return
        last[0] = now
        with session_scope(sessions) as session:
            current = session.get(Job, job_id)
            if current is not None and current.status == JobStatus.RUNNING.value:
                current.stage, current.progress = stage, max(0.0, min(100.0, percent))

    context = JobContext(job_id=job_id, params=params, settings=settings, sessions=sessions, storage=storage,
                         progress=progress)
    try:
        result = HANDLERS[kind](context)
    except JobFailed as failure:
        _finish(sessions, job_id, JobStatus.FAILED, error_code=failure.code, error_message=str(failure))
        return
    except SoftTimeLimitExceeded:
        _finish(sessions, job_id, JobStatus.FAILED, error_code="timeout", error_message="the job ran out of time")
        return
    except Exception as exc:  # noqa: BLE001 - the job must end failed with a reason; details go to the log
        log.exception("job %s failed", job_id)
        _finish(sessions, job_id, JobStatus.FAILED, error_code="internal",
                error_message=f"internal error ({type(exc).__name__}); see the worker log")
        return
    _finish(sessions, job_id, JobStatus.SUCCEEDED, result=result, progress=100.0, stage="done")
