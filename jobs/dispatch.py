"""Fair sharing of the workers between owners: which waiting jobs are handed to the broker, and when.

A queued job waits in the database (``dispatched_at`` is None) until its owner's turn. An owner holds at most
``FTCN_MAX_RUNNING_PER_OWNER`` jobs of a queue in the broker or on a worker at once, and the free places are
handed out round-robin between owners, each owner's single jobs before the rest of its batches. So a user who
submits 50 jobs occupies at most that many workers, and another user's job that arrives behind them waits for one
job to end, not for fifty: the broker never holds more than the cap of anyone's jobs ahead of it.

Why this and not a second, "interactive" queue: a separate queue only helps when the big submission arrives as a
batch; fifty single submissions would fill the interactive queue just the same, and one queue per owner is more
Redis keys than Celery's routing is made for. Holding jobs back in SQL costs one query per dispatch (measured by
``bench/load_api.py``) and needs no change in the workers.

Dispatch runs after every submission (the API's publisher thread), after every job ends (the worker that ran it)
and in every reconciler sweep (a lost nudge is only late). A Redis lock makes one dispatcher decide at a time, so
two cannot both give an owner its last free place. :func:`choose` is the rule, on plain data.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime

import redis
from celery import Celery
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import session_scope
from jobs.models import Job, utcnow
from jobs.queue import QUEUE_FOR_KIND, enqueue_many
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus

log = logging.getLogger(__name__)
LOCK_KEY = "ftcn:dispatch-lock"
#: Longest a dispatcher holds the lock (a dispatcher that died lets it go then).
LOCK_S = 30


@dataclass(frozen=True)
class Waiting:
    """A job waiting for its owner's turn, as the rule sees it."""

    id: str
    kind: JobKind
    owner: str | None
    in_batch: bool
    created_at: datetime


def queue_of(kind: JobKind) -> str:
    return QUEUE_FOR_KIND[kind]


def choose(waiting: list[Waiting], active: Counter, cap: int) -> list[Waiting]:
    """The jobs to hand to the broker now, in the order they should go.

    ``active[(owner, queue)]``: that owner's jobs already in the broker or running. Owners take turns, the one
    whose oldest job waits longest first; in each turn every owner below ``cap`` gets one job, its single jobs
    before its batches' and oldest first. ``cap`` 0: no cap (every waiting job goes, oldest first).
    """
    if cap <= 0:
        return sorted(waiting, key=lambda job: job.created_at)
    ordered = sorted(waiting, key=lambda job: (job.in_batch, job.created_at))
    lines: dict[tuple[str | None, str], deque[Waiting]] = {}
    for job in sorted(waiting, key=lambda job: job.created_at):  # turn order: oldest waiting job first
        lines.setdefault((job.owner, queue_of(job.kind)), deque())
    for job in ordered:
        lines[(job.owner, queue_of(job.kind))].append(job)
    used = Counter(active)
    chosen: list[Waiting] = []
    while lines:
        for key in list(lines):
            line = lines[key]
            if used[key] >= cap or not line:
                del lines[key]
                continue
            chosen.append(line.popleft())
            used[key] += 1
    return chosen


_ACTIVE = or_(Job.status == JobStatus.RUNNING.value,
              and_(Job.status == JobStatus.QUEUED.value, Job.dispatched_at.is_not(None)))
_WAITING = and_(Job.status == JobStatus.QUEUED.value, Job.dispatched_at.is_(None))


def plan_dispatch(session: Session, cap: int, now: datetime | None = None) -> list[tuple[JobKind, str]]:
    """Decide and mark (``dispatched_at``) the jobs to enqueue now; returns them in order."""
    active: Counter = Counter()
    for owner, kind, count in session.execute(select(Job.owner, Job.kind, func.count()).where(_ACTIVE)
                                              .group_by(Job.owner, Job.kind)):
        active[(owner, queue_of(JobKind(kind)))] += count
    waiting: list[Waiting] = []
    groups = session.execute(select(Job.owner, Job.kind).where(_WAITING).group_by(Job.owner, Job.kind)).all()
    for owner, kind in groups:
        room = cap - active[(owner, queue_of(JobKind(kind)))] if cap > 0 else None
        if room is not None and room <= 0:
            continue
        query = (select(Job.id, Job.batch_id, Job.created_at)
                 .where(_WAITING, Job.kind == kind, Job.owner.is_(None) if owner is None else Job.owner == owner)
                 .order_by(Job.batch_id.is_not(None), Job.created_at))
        for job_id, batch_id, created_at in session.execute(query.limit(room) if room else query):
            waiting.append(Waiting(job_id, JobKind(kind), owner, batch_id is not None, created_at))
    chosen = choose(waiting, active, cap)
    now = now or utcnow()
    taken = []
    for job in chosen:  # compare-and-set: a job canceled meanwhile is not sent
        if session.execute(update(Job).where(Job.id == job.id, _WAITING).values(dispatched_at=now)
                           .execution_options(synchronize_session=False)).rowcount == 1:
            taken.append((job.kind, job.id))
    return taken


def dispatch(settings: Settings, sessions: sessionmaker[Session], celery: Celery) -> int:
    """One round: hand every job whose owner has room to the broker. Returns how many went. Without Redis nothing
    can go anyway; the caller logs the error and the next round (or the reconciler) tries again."""
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    with client.lock(LOCK_KEY, timeout=LOCK_S, blocking_timeout=LOCK_S):
        with session_scope(sessions) as session:
            targets = plan_dispatch(session, settings.max_running_per_owner)
        if targets:
            enqueue_many(celery, targets, settings)
    return len(targets)
