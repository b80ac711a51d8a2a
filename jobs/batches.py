"""Batches: many predict jobs submitted in one request, followed and reported on together.

Each item becomes an ordinary predict job (``batch_id`` set, its label and name in its params), so reuse, fair
sharing, erasure and the job's own webhook-free life are the same as for a single job. A batch is finished when its
last job is: the transaction that finishes that job marks the batch and records its ``batch.finished`` webhook
event (the outbox, as for jobs). Two last jobs finishing at once in concurrent transactions could each see the
other still running; the batch row is locked while it is checked (PostgreSQL; SQLite writes one at a time), and
the reconciler's sweep closes any batch that slipped through (:func:`close_finished`).

With labels, the report is the one ``ftcn predict`` prints on many labelled videos (``ftcn.predict.batch``):
video-level AUC, EER, average precision, accuracy at the model's threshold and false-positive rate on reals.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ftcn.predict.batch import video_report
from jobs.models import Batch, Job, WebhookDelivery, rfc3339, utcnow
from jobs.params import PredictParams, read_params, webhook_of
from jobs.states import BATCH, BatchStatus, JobStatus

UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _close(session: Session, batch: Batch) -> None:
    BATCH.check(batch.status, BatchStatus.FINISHED)
    batch.finished_at = utcnow()
    hook = webhook_of(batch.params)
    if hook:
        session.add(WebhookDelivery(batch_id=batch.id, event="batch.finished", url=hook["url"],
                                    token_id=hook.get("token_id"), next_attempt_at=utcnow()))


def job_finished(session: Session, job: Job) -> None:
    """Called by ``jobs.moves.move_job`` when a job of a batch ends: close the batch if this was its last job."""
    batch = session.scalars(select(Batch).where(Batch.id == job.batch_id).with_for_update()).first()
    if batch is None or batch.finished_at is not None:
        return
    others = session.scalar(select(func.count()).select_from(Job).where(
        Job.batch_id == batch.id, Job.id != job.id, Job.status.in_(UNFINISHED))) or 0
    if others == 0:
        _close(session, batch)


def close_finished(session: Session) -> int:
    """Close every open batch none of whose jobs is still queued or running; how many were closed."""
    still = select(Job.batch_id).where(Job.batch_id.is_not(None), Job.status.in_(UNFINISHED))
    done = list(session.scalars(select(Batch).where(Batch.finished_at.is_(None), Batch.id.not_in(still))))
    for batch in done:
        _close(session, batch)
    return len(done)


def report_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """Summary rows in ``ftcn.predict.batch``'s shape, one per job."""
    rows = []
    for job in jobs:
        result, params = job.result or {}, read_params(PredictParams, job.params)
        rows.append({"video": params.item or job.id, "label": params.label or "",
                     "method": "", "verdict": result.get("verdict"), "score": result.get("score"),
                     "threshold": result.get("threshold"), "faces": result.get("faces"),
                     "coverage": (result.get("coverage") or {}).get("share"),
                     "error": job.error_message or ""})
    return rows


def batch_jobs(session: Session, batch_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)))


def batch_view(session: Session, batch: Batch, jobs: list[Job] | None = None) -> dict[str, Any]:
    """The public shape of a batch: counts by status, its jobs, and with labels the detection report."""
    jobs = batch_jobs(session, batch.id) if jobs is None else jobs
    counts = Counter(job.status for job in jobs)
    rows = report_rows(jobs)
    report = None
    if any(row["label"] for row in rows):
        report = video_report([row for row in rows if row["label"]])
        report = report["overall"] if report else None
    return {
        "id": batch.id,
        "name": batch.name,
        "owner": batch.owner,
        "status": batch.status.value,
        "total": batch.total,
        "counts": {status.value: counts.get(status.value, 0) for status in JobStatus},
        "model_id": (batch.params or {}).get("model_id"),
        "created_at": rfc3339(batch.created_at),
        "finished_at": rfc3339(batch.finished_at),
        "report": report,
        "jobs": [{"id": job.id, "item": row["video"], "label": row["label"] or None, "status": job.status,
                  "verdict": row["verdict"], "score": row["score"], "reused_from": job.reused_from,
                  "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None}
                 for job, row in zip(jobs, rows)],
    }
