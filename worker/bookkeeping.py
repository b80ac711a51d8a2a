"""The one place where a worker does job bookkeeping: the heartbeat, the outcome of a handler, and a job's end.

Every task runs its work through :func:`outcome_of`, which turns whatever ended it into a value: the result, a
split, a cancellation, or a failure with its code (``worker.failures``), logged once. A task that ends a job (a
whole run or the merge of its segments) records it through :func:`close_job`: the terminal status, the next job
dispatched, the counters and the duration. The rules themselves (lease, attempts, terminal states) are in
``jobs.lifecycle``; every status write is retried while the database is unavailable (``jobs.db.unit_of_work``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import sessionmaker

from jobs.db import session_scope, unit_of_work
from jobs.lifecycle import beat, finish
from jobs.states import JobKind, JobStatus
from worker.context import Outcome, Split
from worker.failures import Failure, JobCanceled, classify

if TYPE_CHECKING:
    from worker.state import WorkerState

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
        self._last_progress = 0.0

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

    def progress(self, stage: str, percent: float) -> None:
        """A handler's progress, carried by the next beat; written at once at most once a second."""
        self.pending.update(stage=stage, progress=max(0.0, min(100.0, percent)))
        if time.monotonic() - self._last_progress >= 1.0:
            self._last_progress = time.monotonic()
            self.flush()

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@dataclass(frozen=True)
class Ending:
    """How a piece of work ended: the status it gives the job, with its result or its failure."""

    status: JobStatus
    result: dict[str, Any] | None = None
    failure: Failure | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """What the job's row records with the status (``jobs.lifecycle.finish``)."""
        if self.failure is not None:
            return {"error_code": self.failure.code.value, "error_message": self.failure.message}
        if self.result is not None:
            return {"result": self.result, "progress": 100.0, "stage": "done"}
        return {}


def outcome_of(work: Callable[[], Outcome], kind: JobKind, state: WorkerState, what: str) -> Ending | Split:
    """Run ``work``; its split, or how it ended, with every exception given its code (``worker.failures``). A
    failure that is a bug is logged with its traceback; the user sees only its code and message."""
    try:
        outcome = work()
    except JobCanceled:
        return Ending(JobStatus.CANCELED)
    except Exception as exc:  # noqa: BLE001 - every ending becomes the job's outcome, in one table
        failure = classify(exc, state.settings.time_limits()[kind.value])
        if failure.internal:
            log.exception("%s failed", what)
        return Ending(JobStatus.FAILED, failure=failure)
    if isinstance(outcome, Split):
        return outcome
    return Ending(JobStatus.SUCCEEDED, result=outcome.result)


def dispatch_next(state: WorkerState) -> None:
    """The place a job held is free: the next job in turn goes (``jobs.dispatch``)."""
    from jobs.dispatch import dispatch

    try:
        dispatch(state.settings, state.sessions, state.celery)
    except Exception:  # noqa: BLE001 - the reconciler's sweep dispatches what this round could not
        log.warning("dispatch after the job failed; the next sweep will", exc_info=True)


def close_job(state: WorkerState, job_id: str, kind: JobKind, ending: Ending, started: float,
              how: str = "") -> JobStatus:
    """Record a job's end: its terminal status and fields, the next job dispatched, the counters, one log line."""
    from jobs.metrics import JOB_SECONDS, JOBS_FINISHED  # not at import: the worker picks the metrics mode first

    unit_of_work(state.sessions, lambda session: finish(session, job_id, ending.status, **ending.fields))
    dispatch_next(state)
    seconds = time.monotonic() - started
    JOBS_FINISHED.labels(kind=kind.value, status=ending.status.value).inc()
    JOB_SECONDS.labels(kind=kind.value, status=ending.status.value).observe(seconds)
    log.info("job %s (%s)%s %s in %.1f s", job_id, kind.value, how, ending.status.value, seconds)
    return ending.status
