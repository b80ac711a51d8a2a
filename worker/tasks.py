"""The one task, and the one place where a worker does job bookkeeping: claim, beat, run the handler, record.

The rules (lease, attempts, terminal states) are in ``jobs.lifecycle``; this module applies them around a
handler call. Every status write is retried while the database is unavailable (``jobs.db.with_retry``), so a
database restart delays bookkeeping rather than losing it. Handlers write artifacts under keys of their own job
and link them only in the success result, so a rerun overwrites and a failure links nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from sqlalchemy.orm import sessionmaker

from jobs.db import make_engine, session_scope, unit_of_work
from jobs.lifecycle import Claim, beat, claim, finish
from jobs.models import Job
from jobs.queue import TASK_NAME
from jobs.reconcile import reconcile
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from jobs.storage import StorageError, open_storage
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


class _Heartbeat:
    """Beats for the running job from a thread; carries the latest stage/progress with the beat."""

    def __init__(self, sessions: sessionmaker, job_id: str, worker: str, every_s: float) -> None:
        self.sessions, self.job_id, self.worker, self.every_s = sessions, job_id, worker, every_s
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
                beat(session, self.job_id, self.worker, fields)
        except Exception:  # noqa: BLE001 - a missed beat is harmless; the next one retries
            self.pending = {**fields, **self.pending}
            log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)

    def __enter__(self) -> "_Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@celery.task(name=TASK_NAME, bind=True)
def run_job(self, job_id: str) -> None:
    settings, sessions, storage = _services()
    me = worker_name()

    def take(session):
        outcome = claim(session, job_id, me, settings)
        job = session.get(Job, job_id)
        return outcome, (JobKind(job.kind), dict(job.params), job.owner) if outcome is Claim.RUN else None

    outcome, taken = unit_of_work(sessions, take)
    if outcome is not Claim.RUN:
        log.info("job %s not run here: %s", job_id, outcome.value)
        return
    kind, params, owner = taken
    with _Heartbeat(sessions, job_id, me, settings.heartbeat_s) as heart:
        last = [0.0]

        def progress(stage: str, percent: float) -> None:
            heart.pending.update(stage=stage, progress=max(0.0, min(100.0, percent)))
            if time.monotonic() - last[0] >= 1.0:  # at most one progress write a second, besides the beats
                last[0] = time.monotonic()
                heart.flush()

        context = JobContext(job_id=job_id, params=params, settings=settings, sessions=sessions, storage=storage,
                             progress=progress, owner=owner)
        try:
            result = HANDLERS[kind](context)
            status, fields = JobStatus.SUCCEEDED, {"result": result, "progress": 100.0, "stage": "done"}
        except JobFailed as failure:
            status, fields = JobStatus.FAILED, {"error_code": failure.code, "error_message": str(failure)}
        except SoftTimeLimitExceeded:
            limit = settings.time_limits()[kind.value]
            status, fields = JobStatus.FAILED, {"error_code": "timeout",
                                                "error_message": f"the job ran out of time (limit {limit} s)"}
        except StorageError as exc:
            status, fields = JobStatus.FAILED, {"error_code": "storage-unavailable",
                                                "error_message": f"storing the job's files failed: {exc}"}
        except Exception as exc:  # noqa: BLE001 - the job must end failed with a reason; details go to the log
            log.exception("job %s failed", job_id)
            status, fields = JobStatus.FAILED, {"error_code": "internal",
                                                "error_message": f"internal error ({type(exc).__name__}); see the "
                                                                 "worker log"}
    unit_of_work(sessions, lambda session: finish(session, job_id, status, **fields))


def _sweep_forever(settings: Settings) -> None:
    from jobs.queue import make_celery

    sessions = sessionmaker(make_engine(settings.database_url), expire_on_commit=False)
    app = make_celery(settings)
    first = True
    while True:
        try:
            reconcile(settings, sessions, app, lock=not first)
            first = False
        except Exception:  # noqa: BLE001 - the next sweep tries again (Redis or the database may be down)
            log.warning("reconciler sweep failed", exc_info=True)
        time.sleep(settings.reconcile_interval_s)


@worker_ready.connect
def _start_reconciler(**_: Any) -> None:
    """A sweep at start-up (jobs lost while no worker ran), then one every interval, in the main process."""
    threading.Thread(target=_sweep_forever, args=(Settings.from_env(),), daemon=True, name="reconciler").start()
