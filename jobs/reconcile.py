"""The reconciler: the database is the truth about jobs, the broker only a delivery mechanism that can lose them.

A sweep compares the two. Jobs ``queued`` in SQL (for longer than a sweep interval) but absent from the broker
(Redis restarted empty, or the API could not publish) are enqueued again; jobs still waiting for their owner's
turn (``jobs.dispatch``) are not lost, and the sweep ends with a dispatch round and closes batches whose last
jobs ended in concurrent transactions (``jobs.batches``). Jobs ``running`` whose worker stopped
beating are enqueued again if the broker lost their message too, or failed with a reason when they ran past
their hard time limit or used up their attempts. Duplicates this may create are dropped by the lease
(``jobs.lifecycle.claim``). Workers run a sweep at start-up and then every ``reconcile_interval_s``; one Redis
lock keeps several workers from sweeping at the same moment. ``ftcn-admin reconcile`` runs one by hand.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import redis
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import session_scope
from jobs.errors import ErrorCode
from jobs.lifecycle import abandon_reason, finish, is_stale
from jobs.segments import is_split
from jobs.models import Job, aware, utcnow
from jobs import segments
from jobs.queue import QUEUE_FOR_KIND, enqueue_many, enqueue_segments
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus

log = logging.getLogger(__name__)
LOCK_KEY = "ftcn:reconcile-lock"


def _task_id(message: dict) -> str | None:
    try:
        return message["headers"]["id"]
    except (KeyError, TypeError):
        return None


def broker_job_ids(client: redis.Redis) -> tuple[set[str], set[str]]:
    """Task ids (= job ids) of the messages Redis holds: (waiting in a queue, delivered but unacknowledged)."""
    waiting: set[str] = set()
    for queue in set(QUEUE_FOR_KIND.values()):
        for key in client.scan_iter(match=f"{queue}*"):
            if client.type(key) == b"list":
                waiting.update(_task_id(json.loads(raw)) for raw in client.lrange(key, 0, -1))
    delivered = {_task_id(json.loads(value)[0]) for value in client.hvals("unacked")}
    return waiting - {None}, delivered - {None}


def plan(jobs: list[Job], waiting: set[str], delivered: set[str], settings: Settings,
         now: datetime) -> tuple[list[Job], list[tuple[Job, str]]]:
    """(jobs to enqueue again, jobs to fail with the reason): the sweep's decisions, from data only.

    A stale running job is enqueued again even if its message sits in Redis's unacknowledged set: Redis would
    redeliver it only after the visibility timeout (hours), and the lease drops whichever copy comes second.
    """
    grace = timedelta(seconds=settings.reconcile_interval_s)
    requeue: list[Job] = []
    abandon: list[tuple[Job, str]] = []
    for job in jobs:
        if job.id in waiting or is_split(job):  # a split job's segments have their own sweep (jobs.segments)
            continue
        if job.status == JobStatus.QUEUED.value:
            handed = aware(job.dispatched_at)  # None: waiting for its owner's turn (jobs.dispatch), not lost
            if handed is not None and job.id not in delivered and now - handed > grace:
                requeue.append(job)
            continue
        if not is_stale(job, settings, now):
            continue
        reason = abandon_reason(job, settings, now)
        if reason is None:
            requeue.append(job)
        else:
            abandon.append((job, reason))
    return requeue, abandon


def reconcile(settings: Settings, sessions: sessionmaker[Session], celery: Celery, *, lock: bool = False,
              now: datetime | None = None) -> dict[str, int]:
    """One sweep; returns counts. With ``lock``, skip if another worker swept within the interval."""
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    if lock and not client.set(LOCK_KEY, "1", nx=True, ex=max(1, settings.reconcile_interval_s - 1)):
        return {"skipped": 1}
    now = now or utcnow()
    with session_scope(sessions) as session:
        jobs = list(session.scalars(select(Job).where(Job.status.in_([JobStatus.QUEUED.value,
                                                                      JobStatus.RUNNING.value]))))
        waiting, delivered = broker_job_ids(client)
        requeue, abandon = plan(jobs, waiting, delivered, settings, now)
        for job, reason in abandon:
            finish(session, job.id, JobStatus.FAILED, error_code=ErrorCode.WORKER_LOST.value, error_message=reason)
        targets = [(JobKind(job.kind), job.id) for job in requeue]
        resend, merges = segments.sweep(session, settings, waiting | delivered, now)
    if targets:
        enqueue_many(celery, targets, settings)
    if resend or merges:
        enqueue_segments(celery, resend, settings, merges)
        log.warning("reconciler: %d segment(s) sent again, %d merge(s) started", len(resend), len(merges))
    if targets or abandon:
        log.warning("reconciler: %d job(s) enqueued again, %d failed as abandoned", len(targets), len(abandon))
    from jobs.batches import close_finished
    from jobs.dispatch import dispatch

    with session_scope(sessions) as session:
        closed = close_finished(session)
    return {"requeued": len(targets), "failed": len(abandon), "checked": len(jobs), "segments": len(resend),
            "merges": len(merges),
            "dispatched": dispatch(settings, sessions, celery), "batches_closed": closed}
