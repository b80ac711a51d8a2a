"""Long videos across workers: the bookkeeping of a predict job split into time segments.

The worker that takes a long video's job plans its segments (``ftcn.predict.segments``), writes one row each and
sends them together, one message a segment (task id = segment id) on the predict queue, so any free worker takes
one; the job stays ``running`` at the stage ``segments``. A segment is claimed like a job (compare-and-set on its
attempt counter, a heartbeat while it runs), stores its result under the job's files and is marked done; the
worker that finishes the last one claims the merge (the job moves to the stage ``merge``, held by that worker's
heartbeat) and runs it at once: the group's chord, kept in the database rather than in Celery's result backend,
so that it survives a Redis restart like everything else here.

A segment that fails is sent again alone, up to ``FTCN_MAX_ATTEMPTS`` times (then the job fails with its
reason); one whose worker died (silent heartbeat) or whose message was lost is sent again by the reconciler's
sweep (:func:`sweep`), which also starts a merge nobody started or whose worker died. Nothing a finished segment
stored is redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobs.errors import ErrorCode
from jobs.lifecycle import STALE_AFTER_BEATS, finish
from jobs.models import Job, Segment, aware, utcnow
from jobs.settings import Settings
from jobs.states import SEGMENT, JobStatus, SegmentStatus

SPLIT, MERGE = "segments", "merge"  # the stages of a split job
#: A segment's statuses as stored, for queries; every move between them is checked against ``SEGMENT``.
QUEUED, RUNNING, DONE = SegmentStatus.QUEUED.value, SegmentStatus.RUNNING.value, SegmentStatus.DONE.value
SEGMENT_TASK, MERGE_TASK = "worker.run_segment", "worker.merge_segments"


def segment_id(job_id: str, index: int) -> str:
    return f"{job_id}:{index}"


def job_of(seg_id: str) -> str:
    """The job a segment id belongs to (:func:`segment_id`'s inverse)."""
    return seg_id.rsplit(":", 1)[0]


def _stale(moment: datetime | None, settings: Settings, now: datetime) -> bool:
    moment = aware(moment)
    return moment is None or now - moment > timedelta(seconds=STALE_AFTER_BEATS * settings.heartbeat_s)


def split(session: Session, job_id: str, plans: list[dict[str, Any]], now: datetime | None = None) -> list[str]:
    """Record the job's segments (once: a job run again after its worker died keeps the rows it has) and move it
    to the stage ``segments``; returns the ids of the segments to send (those not done)."""
    now = now or utcnow()
    existing = {s.index: s for s in session.scalars(select(Segment).where(Segment.job_id == job_id))}
    for plan in plans:
        if plan["index"] not in existing:
            session.add(Segment(id=segment_id(job_id, plan["index"]), job_id=job_id, index=plan["index"], plan=plan,
                                status=QUEUED, attempts=0, sent_at=now))
    job = session.get(Job, job_id)
    job.stage, job.heartbeat_at = SPLIT, now
    session.flush()
    return [segment_id(job_id, p["index"]) for p in plans if existing.get(p["index"]) is None
            or existing[p["index"]].status != DONE]


@dataclass(frozen=True)
class Taken:
    """What ``claim_segment`` decided: run it (with its plan), or why not."""

    run: bool
    why: str = ""
    plan: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    owner: str | None = None


def claim_segment(session: Session, seg_id: str, worker: str, settings: Settings,
                  now: datetime | None = None) -> Taken:
    now = now or utcnow()
    segment = session.get(Segment, seg_id)
    job = session.get(Job, segment.job_id) if segment is not None else None
    if segment is None or job is None or job.status != JobStatus.RUNNING.value or SEGMENT.final(segment.status):
        return Taken(False, "gone")
    if segment.status == RUNNING and not _stale(segment.heartbeat_at, settings, now):
        return Taken(False, "busy")
    if segment.attempts >= settings.max_attempts:
        give_up(session, segment, f"segment {segment.index} stopped its worker {segment.attempts} time(s)",
                ErrorCode.WORKER_LOST)
        return Taken(False, "abandoned")
    SEGMENT.check(segment.status, SegmentStatus.RUNNING)
    won = session.execute(update(Segment).where(Segment.id == seg_id, Segment.attempts == segment.attempts)
                          .values(status=RUNNING, attempts=segment.attempts + 1, worker=worker, heartbeat_at=now)
                          .execution_options(synchronize_session=False)).rowcount == 1
    if not won:
        return Taken(False, "busy")
    return Taken(True, plan=dict(segment.plan), params=dict(job.params), owner=job.owner)


def beat_segment(session: Session, seg_id: str, worker: str) -> None:
    session.execute(update(Segment).where(Segment.id == seg_id, Segment.worker == worker,
                                          Segment.status == RUNNING).values(heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False))


def segment_done(session: Session, seg_id: str, worker: str, result_key: str, seconds: float) -> tuple[int, int]:
    """Mark the segment done (if this worker still holds it); (segments done, segments) of its job."""
    session.execute(update(Segment).where(Segment.id == seg_id, Segment.worker == worker,
                                          Segment.status == RUNNING)  # running -> done (SEGMENT)
                    .values(status=DONE, result_key=result_key, seconds=seconds, heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False))
    job_id = job_of(seg_id)
    statuses = list(session.scalars(select(Segment.status).where(Segment.job_id == job_id)))
    done = sum(status == DONE for status in statuses)
    job = session.get(Job, job_id)
    if job is not None and job.status == JobStatus.RUNNING.value:
        job.progress = 5.0 + 80.0 * done / max(1, len(statuses))
    return done, len(statuses)


def segment_failed(session: Session, seg_id: str, worker: str, code: ErrorCode, message: str,
                   settings: Settings) -> bool:
    """A segment's run failed: True to send it again alone, False when it has no attempt left (the job fails)."""
    segment = session.get(Segment, seg_id)
    if segment is None or segment.worker != worker or segment.status != RUNNING:
        return False
    if segment.attempts >= settings.max_attempts:
        give_up(session, segment, f"segment {segment.index} failed {segment.attempts} time(s): {message}", code)
        return False
    segment.status = SEGMENT.check(segment.status, SegmentStatus.QUEUED).value
    segment.error, segment.sent_at = message, utcnow()
    return True


def give_up(session: Session, segment: Segment, message: str, code: ErrorCode) -> None:
    segment.status, segment.error = SEGMENT.check(segment.status, SegmentStatus.FAILED).value, message
    finish(session, segment.job_id, JobStatus.FAILED, error_code=code.value, error_message=message)


def claim_merge(session: Session, job_id: str, worker: str, settings: Settings, now: datetime | None = None) -> bool:
    """Take the merge of a split job whose segments are all done, unless a live worker holds it already."""
    now = now or utcnow()
    job = session.get(Job, job_id)
    if job is None or job.status != JobStatus.RUNNING.value or job.stage not in (SPLIT, MERGE):
        return False
    if job.stage == MERGE and not _stale(job.heartbeat_at, settings, now):
        return False
    statuses = list(session.scalars(select(Segment.status).where(Segment.job_id == job_id)))
    if not statuses or any(status != DONE for status in statuses):
        return False
    return session.execute(update(Job).where(Job.id == job_id, Job.stage == job.stage,
                                             Job.heartbeat_at == job.heartbeat_at)
                           .values(stage=MERGE, worker=worker, heartbeat_at=now, progress=85.0)
                           .execution_options(synchronize_session=False)).rowcount == 1


def result_keys(session: Session, job_id: str) -> list[str]:
    return [key for key in session.scalars(select(Segment.result_key).where(Segment.job_id == job_id)
                                           .order_by(Segment.index))]


def summary(session: Session, job_id: str) -> list[dict[str, Any]]:
    """Each segment as the job's result describes it: its frames, attempts and seconds."""
    rows = session.scalars(select(Segment).where(Segment.job_id == job_id).order_by(Segment.index))
    return [{"index": s.index, "start_frame": s.plan["start"], "end_frame": s.plan["end"], "attempts": s.attempts,
             "seconds": None if s.seconds is None else round(s.seconds, 2)} for s in rows]


def sweep(session: Session, settings: Settings, in_broker: set[str],
          now: datetime | None = None) -> tuple[list[str], list[str]]:
    """(segments to send again, split jobs to merge): segments whose worker went silent or whose message is in no
    queue a sweep interval after it was sent, and jobs whose segments are all done but whose merge nobody holds."""
    now = now or utcnow()
    grace = timedelta(seconds=settings.reconcile_interval_s)
    jobs = list(session.scalars(select(Job).where(Job.status == JobStatus.RUNNING.value,
                                                  Job.stage.in_([SPLIT, MERGE]))))
    resend: list[str] = []
    merge: list[str] = []
    for job in jobs:
        segments = list(session.scalars(select(Segment).where(Segment.job_id == job.id)))
        lost = [s for s in segments if (s.status == QUEUED and s.id not in in_broker
                                        and now - (aware(s.sent_at) or now) > grace)
                or (s.status == RUNNING and _stale(s.heartbeat_at, settings, now))]
        for segment in lost:
            segment.sent_at = now
            resend.append(segment.id)
        if segments and all(s.status == DONE for s in segments) and (
                job.stage == SPLIT or _stale(job.heartbeat_at, settings, now)):
            merge.append(job.id)
    return resend, merge


def is_split(job: Job) -> bool:
    """A job run by its segments: the reconciler's job rules leave it to :func:`sweep`."""
    return job.stage in (SPLIT, MERGE)
