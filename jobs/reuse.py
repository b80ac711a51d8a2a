"""Answering a known video at once: a finished predict result is reused for the same content, model and options.

The key is a digest of the input's SHA-256, the model's weights (``models.sha256``; two registrations of one
checkpoint share results), the options that change a result (stride, frames, face backend and detector) and the
analysis version (``ftcn.predict.result.ANALYSIS_VERSION``: an upgrade that changes results reuses none from before).
A reused job succeeds at once with the source's verdict, marked ``reused_from``; its links are its own (signed
for it) to the source's stored files, so nothing is copied. It depends on those files, so erasing the source
(owner, admin or retention) erases the jobs that reuse it too, which keep their verdict summary like any erased
job (``jobs.erasure``). A reused job always names the job that ran the model, never another reused one.

Multipart uploads are digested as they arrive, so the API answers them from the request; a video by URL or by
direct upload is digested by the worker once it has the file, before any model runs. ``"reuse": false`` forces a
run. With ``FTCN_REUSE_SCOPE=owner`` (the default) only the submitter's own results are reused: answering from
another owner's job would tell the submitter that someone sent the same file before.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ftcn.predict.versions import ANALYSIS_VERSION
from jobs.models import Job, Model
from jobs.moves import move_job
from jobs.params import PredictParams
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus

#: Predict options that do not change the result, left out of the key.
NEUTRAL_OPTIONS = ("reuse",)


def model_digest(session: Session, model_id: str) -> str:
    """The weights' digest when the registry knows it, else the model's id (rows registered before digests)."""
    digest = session.scalar(select(Model.sha256).where(Model.id == model_id))
    return digest or f"model:{model_id}"


def reuse_key(content_sha256: str, weights: str, options: dict[str, Any]) -> str:
    """The key also holds the analysis version: after an upgrade that changes results, old ones answer nothing."""
    meaningful = {k: v for k, v in sorted((options or {}).items()) if k not in NEUTRAL_OPTIONS and v is not None}
    return hashlib.sha256(json.dumps([content_sha256, weights, meaningful, ANALYSIS_VERSION],
                                     sort_keys=True).encode()).hexdigest()


def key_for(session: Session, params: PredictParams, content_sha256: str) -> str:
    """The reuse key of a predict job's params once its input's digest is known."""
    return reuse_key(content_sha256, model_digest(session, params.model_id), params.options.model_dump())


def find_source(session: Session, key: str, owner: str | None, settings: Settings,
                exclude: str | None = None) -> Job | None:
    """The newest finished, unerased job that ran the model for this key and whose result may answer ``owner``."""
    query = select(Job).where(Job.reuse_key == key, Job.kind == JobKind.PREDICT.value,
                              Job.status == JobStatus.SUCCEEDED.value, Job.erased_at.is_(None),
                              Job.reused_from.is_(None))
    if settings.reuse_scope == "owner":
        query = query.where(Job.owner.is_(None) if owner is None else Job.owner == owner)
    if exclude is not None:
        query = query.where(Job.id != exclude)
    return session.scalars(query.order_by(Job.finished_at.desc()).limit(1)).first()


def reused_result(source: Job) -> dict[str, Any]:
    """The source's result as the reusing job presents it."""
    return {**(source.result or {}), "reused_from": source.id}


def wanted(params: PredictParams) -> bool:
    return params.reuse


def answer_from(session: Session, job_id: str, source: Job, key: str) -> Job:
    """Finish a queued job with the source's result, in the caller's transaction (webhook and batch events are
    recorded by ``jobs.moves.move_job`` as for any job that ends)."""
    job = session.get(Job, job_id)
    job.reuse_key, job.reused_from = key, source.id
    job.dispatched_at = job.dispatched_at or job.created_at
    move_job(session, job, JobStatus.RUNNING)
    job.result, job.progress, job.stage = reused_result(source), 100.0, "reused"
    move_job(session, job, JobStatus.SUCCEEDED)
    session.flush()
    return job


def on_worker(session: Session, job_id: str, params: PredictParams, content_sha256: str,
              settings: Settings) -> dict[str, Any] | None:
    """A running predict job's input is digested: record its key (so later jobs can reuse it once it succeeds)
    and, if a finished job already answered the same, the result to finish with (None: run the model)."""
    job = session.get(Job, job_id)
    key = key_for(session, params, content_sha256)
    job.reuse_key = key
    if not wanted(params):
        return None
    source = find_source(session, key, job.owner, settings, exclude=job_id)
    if source is None:
        return None
    job.reused_from = source.id
    return reused_result(source)


def dependents(session: Session, source_id: str) -> list[Job]:
    """The jobs answered from this one's result."""
    return list(session.scalars(select(Job).where(Job.reused_from == source_id)))
