"""The one task, and the one place where a worker does job bookkeeping: claim, beat, run the handler, record.

The rules (lease, attempts, terminal states) are in ``jobs.lifecycle``; this module applies them around a
handler call, and turns whatever ended the handler into the job's error in one call (``worker.failures``). Every
status write is retried while the database is unavailable (``jobs.db.with_retry``), so a database restart delays
bookkeeping rather than losing it. Handlers write artifacts under keys of their own job and link them only in the
success result, so a rerun overwrites and a failure links nothing. The task is registered on the worker's Celery
app by ``worker.state.worker_state``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import sessionmaker

from jobs.db import session_scope, unit_of_work
from jobs.lifecycle import Claim, aware, beat, claim, finish
from jobs.logs import job_context
from jobs.models import Job, utcnow
from jobs.states import JobKind, JobStatus
from worker.failures import JobCanceled, classify
from worker.handlers import HANDLERS, JobContext, Split

log = logging.getLogger(__name__)


class Heartbeat:
    """Beats for the running job from a thread; carries the latest stage/progress with the beat. ``beat``: what
    one beat writes (default: the job's heartbeat, ``jobs.lifecycle.beat``; a segment's, ``worker.segments``)."""

    def __init__(self, sessions: sessionmaker, job_id: str, worker: str, every_s: float,
                 beat: Callable[..., None] = beat) -> None:
        self.sessions, self.job_id, self.worker, self.every_s = sessions, job_id, worker, every_s
        self.beat = beat
        self.pending: dict[str, Any] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id[:8]}")

    def _run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.flush()

    def flush(self) -> None:
        fields, self.pending = self.pending, {}
        try:
            with session_scope(self.sessions) as session:
                self.beat(session, self.job_id, self.worker, fields)
        except Exception:  # noqa: BLE001 - a missed beat is harmless; the next one retries
            self.pending = {**fields, **self.pending}
            log.warning("heartbeat for job %s failed", self.job_id, exc_info=True, extra={"job_id": self.job_id})

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def dispatch_next(state: Any) -> None:
    from jobs.dispatch import dispatch

    try:
        dispatch(state.settings, state.sessions, state.celery)
    except Exception:  # noqa: BLE001 - the reconciler's sweep dispatches what this round could not
        log.warning("dispatch after the job failed; the next sweep will", exc_info=True)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(task: Any, job_id: str) -> None:
    from worker.state import worker_state

    execute(job_id, worker_state())


def execute(job_id: str, state: Any) -> JobStatus | None:
    """Run one job with its bookkeeping; the status it ended in, or None when it was not run here. Every line
    logged meanwhile carries the job's id."""
    with job_context(job_id):
        return _execute(job_id, state)


def _execute(job_id: str, state: Any) -> JobStatus | None:
    from jobs.metrics import JOB_SECONDS, JOB_WAIT_SECONDS, JOBS_FINISHED

    settings, sessions = state.settings, state.sessions
    me = worker_name()

    def take(session):
        outcome = claim(session, job_id, me, settings)
        job = session.get(Job, job_id)
        taken = (JobKind(job.kind), dict(job.params), job.owner, job.created_at, job.attempts)
        return outcome, taken if outcome is Claim.RUN else None

    outcome, taken = unit_of_work(sessions, take)
    if outcome is not Claim.RUN:
        log.info("job %s not run here: %s", job_id, outcome.value)
        return None
    kind, params, owner, created_at, attempts = taken
    started = time.monotonic()
    if attempts == 1:
        JOB_WAIT_SECONDS.labels(kind=kind.value).observe(max(0.0, (utcnow() - aware(created_at)).total_seconds()))
    log.info("job %s (%s) started, attempt %d", job_id, kind.value, attempts)
    with Heartbeat(sessions, job_id, me, settings.heartbeat_s) as heart:
        last = [0.0]

        def progress(stage: str, percent: float) -> None:
            heart.pending.update(stage=stage, progress=max(0.0, min(100.0, percent)))
            if time.monotonic() - last[0] >= 1.0:  # at most one progress write a second, besides the beats
                last[0] = time.monotonic()
                heart.flush()

        context = JobContext(job_id=job_id, params=params, state=state, progress=progress, owner=owner)
        try:
            result = HANDLERS[kind](context)
            status, fields = JobStatus.SUCCEEDED, {"result": result, "progress": 100.0, "stage": "done"}
        except Split as split:  # its segments carry it on (worker.segments); they record its end
            log.info("job %s (%s) split into %d segments", job_id, kind.value, split.segments)
            return JobStatus.RUNNING
        except JobCanceled:
            status, fields = JobStatus.CANCELED, {}
        except Exception as exc:  # noqa: BLE001 - every ending becomes the job's outcome, in one table
            failure = classify(exc, settings.time_limits()[kind.value])
            if failure.internal:
                log.exception("job %s failed", job_id)
            status, fields = JobStatus.FAILED, {"error_code": failure.code.value, "error_message": failure.message}
    unit_of_work(sessions, lambda session: finish(session, job_id, status, **fields))
    dispatch_next(state)  # the place this job held is free: the next job in turn goes (jobs.dispatch)
    JOBS_FINISHED.labels(kind=kind.value, status=status.value).inc()
    JOB_SECONDS.labels(kind=kind.value, status=status.value).observe(time.monotonic() - started)
    log.info("job %s (%s) %s in %.1f s", job_id, kind.value, status.value, time.monotonic() - started)
    return status
