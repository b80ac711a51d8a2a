"""Erasing what people uploaded: a job's input and every artifact, on request and by retention.

A job's stored files all live under ``jobs.storage.job_prefix`` (the input under ``input/``, outputs beside it),
so erasing is one prefix deletion. The job row stays, marked erased, with its verdict summary (verdict, score,
faces, coverage) and without anything that points at the person: the file name, the source URL, the input's
digest and the artifact keys go. Models and datasets a job registered are not the job's files: they stay until an
operator removes them.

Retention (``FTCN_INPUT_RETENTION_DAYS``, ``FTCN_ARTIFACT_RETENTION_DAYS``; 0 keeps forever) is enforced by the
workers' periodic sweep (:func:`sweep`), which also erases again what a worker still wrote after an erasure, and
deletes direct uploads nobody used before they expired. Erasing a job also erases the jobs answered from its
result (``jobs.reuse``): they only linked to its files.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jobs.auth import Principal
from jobs.keys import job_input_prefix, job_prefix
from jobs.models import Job, Upload, utcnow
from jobs.moves import move_job
from jobs.params import IDENTIFYING
from jobs.reuse import dependents
from jobs.settings import Settings
from jobs.states import JobStatus
from jobs.storage import Storage
from jobs.uploads import sweep_unused

#: Result entries kept on an erased job: the verdict summary.
SUMMARY_RESULT = ("verdict", "score", "threshold", "faces", "faces_seen", "coverage", "no_face_reason", "backend",
                  "model_id", "dataset_id", "inconclusive_reasons")
#: How long after an erasure the sweep still looks for files a running worker wrote late.
LATE_WRITES = timedelta(days=1)


class Reason:
    OWNER = "owner"
    ADMIN = "admin"
    RETENTION = "retention"
    SOURCE = "source-erased"  # the job whose result it reused was erased (jobs.reuse)


def erase_job(session: Session, storage: Storage, job: Job, reason: str) -> Job:
    """Cancel the job if it has not finished, remove every stored file and what identifies its input. Repeating it
    is harmless (the files are looked for again; the row is already clean)."""
    if not JobStatus(job.status).finished:
        move_job(session, job, JobStatus.CANCELED)
    storage.delete_prefix(job_prefix(job.id))
    if job.erased_at is None:
        job.erased_at = utcnow()
        job.erased_reason = reason
    job.input_erased_at = job.input_erased_at or job.erased_at
    job.params = {k: v for k, v in (job.params or {}).items() if k not in IDENTIFYING}
    session.execute(delete(Upload).where(Upload.job_id == job.id))  # the direct upload's record (its file name)
    if job.result:
        job.result = {k: v for k, v in job.result.items() if k in SUMMARY_RESULT}
    session.flush()
    for dependent in dependents(session, job.id):  # their links point at the files just removed
        if dependent.erased_at is None:
            erase_job(session, storage, dependent, Reason.SOURCE)
    return job


def erase_for(session: Session, storage: Storage, job: Job, principal: Principal) -> Job:
    """Erasure asked through the API (the caller may see the job: its owner, or an admin)."""
    reason = Reason.OWNER if principal.owner is not None and job.owner == principal.owner else Reason.ADMIN
    return erase_job(session, storage, job, reason)


def sweep(session: Session, storage: Storage, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """One retention pass; returns what it did."""
    now = now or utcnow()
    counts = {"inputs": 0, "jobs": 0, "late": 0}
    finished = Job.status.in_([s.value for s in JobStatus if s.finished])
    if settings.artifact_retention_days:
        cutoff = now - timedelta(days=settings.artifact_retention_days)
        for job in session.scalars(select(Job).where(finished, Job.erased_at.is_(None), Job.finished_at < cutoff)):
            erase_job(session, storage, job, Reason.RETENTION)
            counts["jobs"] += 1
    if settings.input_retention_days:
        cutoff = now - timedelta(days=settings.input_retention_days)
        for job in session.scalars(select(Job).where(finished, Job.input_erased_at.is_(None),
                                                     Job.finished_at < cutoff)):
            storage.delete_prefix(job_input_prefix(job.id))
            job.input_erased_at = now
            job.params = _without_input(job.params)
            counts["inputs"] += 1
    for job in session.scalars(select(Job).where(Job.erased_at > now - LATE_WRITES)):
        if storage.keys(job_prefix(job.id)):
            storage.delete_prefix(job_prefix(job.id))
            counts["late"] += 1
    counts["uploads"] = sweep_unused(session, storage, now)
    session.flush()
    return counts


def _without_input(params: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (params or {}).items() if k != "input_key"}
