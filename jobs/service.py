"""Job operations shared by the API and the worker: create (idempotently), find, list, cancel, present.

Functions take a SQLAlchemy session and plain data; HTTP and Celery live at the edges (api/, worker/).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import bindparam, func, insert, or_, select
from sqlalchemy.orm import Session

from jobs.auth import Principal, can_see, may_see, visible
from jobs.batches import batch_jobs
from jobs.keys import job_input_key
from jobs.models import Batch, Dataset, Job, Model, Upload, new_id, rfc3339, utcnow
from jobs.moves import move_job
from jobs.states import IllegalTransition, JobKind, JobStatus
from jobs.storage import Storage
from jobs.uploads import hand_to_job


class NotFound(LookupError):
    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(f"no {what} with id {identifier!r}")
        self.what, self.identifier = what, identifier


class Conflict(ValueError):
    """The request contradicts the current state (idempotency key reuse, finished job, missing default model)."""


class BadIdempotencyKey(ValueError):
    """An Idempotency-Key header that cannot be one (too long, or not printable)."""


def fingerprint(kind: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([kind, params], sort_keys=True, default=str).encode()).hexdigest()


#: Longest Idempotency-Key a client may send (a UUID needs 36).
MAX_IDEMPOTENCY_KEY = 128


def scoped_key(key: str | None, principal: Principal) -> str | None:
    """Idempotency keys are per owner: two clients choosing the same key never see each other's job. Stored as a
    digest of owner and key, so any owner name and any allowed key fit the column."""
    if not key:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise BadIdempotencyKey(f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} printable characters")
    return hashlib.sha256(f"{principal.owner or ''}\n{key}".encode()).hexdigest()


def find_idempotent(session: Session, key: str | None, kind: str, params: dict[str, Any]) -> Job | None:
    """The job already created for this (owner-scoped) Idempotency-Key and body; a different body is a conflict."""
    if not key:
        return None
    existing = session.scalar(select(Job).where(Job.idempotency_key == key))
    if existing is None:
        return None
    if existing.request_hash != fingerprint(kind, params):
        raise Conflict("this Idempotency-Key was already used with a different request")
    return existing


#: Statements of the submit path, built once: it runs on every submission, and building a SQLAlchemy expression
#: costs more CPU than running it (bench/load_api.py).
_INSERT_JOB = insert(Job.__table__)
_MODEL_OWNER = select(Model.owner).where(Model.id == bindparam("model_id"))
_SHARED_DEFAULT = (select(Model.id).where(Model.is_default.is_(True), Model.owner.is_(None))
                   .order_by(Model.created_at.desc()).limit(1))
_OWN_OR_SHARED_DEFAULT = (select(Model.id)
                          .where(Model.is_default.is_(True),
                                 or_(Model.owner == bindparam("owner"), Model.owner.is_(None)))
                          .order_by(Model.owner.is_(None), Model.created_at.desc()).limit(1))


def create_job(session: Session, kind: JobKind, params: dict[str, Any], idempotency_key: str | None = None,
               owner: str | None = None, batch_id: str | None = None) -> Job:
    """Insert a queued job (one Core INSERT in the session's transaction) and return it as a detached ``Job``
    for presentation; load it with ``session.get`` to change it. It waits for its owner's turn
    (``jobs.dispatch``) until a dispatcher hands it to the broker."""
    row = {"id": new_id(), "kind": kind.value, "status": JobStatus.QUEUED.value, "params": params,
           "progress": 0.0, "attempts": 0, "idempotency_key": idempotency_key,
           "request_hash": fingerprint(kind.value, params), "owner": owner, "created_at": utcnow(),
           "batch_id": batch_id}
    session.connection().execute(_INSERT_JOB, row)
    return Job(**row)


def create_job_with_input(session: Session, storage: Storage, kind: JobKind, params: dict[str, Any],
                          stream: BinaryIO, name: str, content_type: str, idempotency_key: str | None = None,
                          owner: str | None = None) -> Job:
    """A queued job and its uploaded input, stored in chunks under the job's key (``jobs.storage.job_input_key``)
    in the same transaction: if storing fails, no job is left without its input."""
    job = create_job(session, kind, params, idempotency_key, owner)
    key = job_input_key(job.id, name)
    storage.put_stream(key, stream, content_type)
    return _with_input(session, job.id, key)


def create_job_from_upload(session: Session, storage: Storage, kind: JobKind, params: dict[str, Any], upload: Upload,
                           idempotency_key: str | None = None, owner: str | None = None,
                           batch_id: str | None = None) -> Job:
    """A queued job whose input is a checked direct upload (``jobs.uploads.usable_upload``), moved under the
    job's input key in the same transaction."""
    job = create_job(session, kind, {**params, "filename": upload.filename}, idempotency_key, owner, batch_id)
    return _with_input(session, job.id, hand_to_job(session, storage, upload, job.id))


def _with_input(session: Session, job_id: str, input_key: str) -> Job:
    """The job (loaded to change it) with its stored input's key in its params."""
    stored = session.get(Job, job_id)
    stored.params = {**stored.params, "input_key": input_key}
    session.flush()
    return stored


def get(session: Session, model: type, identifier: str, what: str, principal: Principal):
    """The row, if it exists and this principal may see it; NotFound otherwise (the same answer for both)."""
    found = session.get(model, identifier)
    if found is None or not can_see(found, principal):
        raise NotFound(what, identifier)
    return found


def list_jobs(session: Session, principal: Principal, kind: str | None, status: str | None, limit: int,
              offset: int) -> tuple[list[Job], int]:
    query = visible(select(Job), Job, principal)
    if kind:
        query = query.where(Job.kind == JobKind(kind).value)
    if status:
        query = query.where(Job.status == JobStatus(status).value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(Job.created_at.desc()).limit(limit).offset(offset)).all()
    return list(items), total


def list_rows(session: Session, entity: type, principal: Principal) -> list[Any]:
    """Models or datasets this principal may see, oldest first."""
    return list(session.scalars(visible(select(entity), entity, principal).order_by(entity.created_at)))


def cancel(session: Session, job_id: str, principal: Principal) -> Job:
    job = get(session, Job, job_id, "job", principal)
    try:
        move_job(session, job, JobStatus.CANCELED)
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from None
    return job


def default_model(session: Session, principal: Principal) -> str | None:
    """Id of the caller's own default model, else of the shared one (registered by an operator without an owner)."""
    if principal.owner is None:
        return session.connection().scalar(_SHARED_DEFAULT)
    return session.connection().scalar(_OWN_OR_SHARED_DEFAULT, {"owner": principal.owner})


def clear_default(session: Session, owner: str | None) -> None:
    """Defaults are per owner (plus one shared): making a model the default touches only its owner's models."""
    owned = Model.owner.is_(None) if owner is None else Model.owner == owner
    session.query(Model).filter(owned).update({Model.is_default: False})


def resolve_model(session: Session, model_id: str | None, principal: Principal) -> str:
    """The id of the model a predict job will use: the one named (if this principal may use it) or the default.
    Reads two columns, not the model row: this runs on every submission."""
    if model_id:
        found = session.connection().execute(_MODEL_OWNER, {"model_id": model_id}).first()
        if found is None or not may_see(found.owner, principal, shared=True):
            raise NotFound("model", model_id)
        return model_id
    default = default_model(session, principal)
    if default is None:
        raise Conflict("no model is registered as default; register one (ftcn-admin register-model) or pass model_id")
    return default


def job_view(job: Job, storage: Storage, ttl_s: int) -> dict[str, Any]:
    """The public shape of a job, with fresh links to every artifact it produced."""
    result = dict(job.result or {})
    artifacts = result.pop("artifacts", {}) or {}
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress or 0.0, 1),
        "stage": job.stage,
        "params": job.params,
        "result": result or None,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "attempts": job.attempts,
        "owner": job.owner,
        "created_at": rfc3339(job.created_at),
        "started_at": rfc3339(job.started_at),
        "finished_at": rfc3339(job.finished_at),
        "erased_at": rfc3339(job.erased_at),
        "erased_reason": job.erased_reason,
        "input_erased_at": rfc3339(job.input_erased_at),
        "reused_from": job.reused_from,
        "batch_id": job.batch_id,
        "links": {name: storage.link(key, ttl_s) for name, key in sorted(artifacts.items())},
    }


def model_view(model: Model) -> dict[str, Any]:
    return {"id": model.id, "name": model.name, "threshold": model.threshold, "default": model.is_default,
            "source_job_id": model.source_job_id, "metrics": model.metrics, "config": model.config,
            "owner": model.owner, "card": model.card,
            "created_at": rfc3339(model.created_at)}


def dataset_view(dataset: Dataset) -> dict[str, Any]:
    return {"id": dataset.id, "source_job_id": dataset.source_job_id, "counts": dataset.counts, "owner": dataset.owner,
            "created_at": rfc3339(dataset.created_at)}


@dataclass(frozen=True)
class BatchItem:
    """One video of a new batch: its job's params (label and name included) and where the video is."""

    params: dict[str, Any]
    video_url: str | None = None
    upload: Upload | None = None  # a direct upload already checked as usable by this caller


def find_batch(session: Session, key: str | None, digest: str) -> Batch | None:
    """The batch already made for this (owner-scoped) Idempotency-Key and request; a different request is a
    conflict."""
    existing = session.scalar(select(Batch).where(Batch.idempotency_key == key)) if key else None
    if existing is not None and existing.request_hash != digest:
        raise Conflict("this Idempotency-Key was already used with a different request")
    return existing


def create_batch(session: Session, storage: Storage, owner: str | None, name: str | None, params: dict[str, Any],
                 items: list[BatchItem], key: str | None, digest: str) -> Batch:
    """The batch and one queued predict job per item, in the caller's transaction (all or none)."""
    batch = Batch(owner=owner, name=name, total=len(items), params=params, idempotency_key=key, request_hash=digest)
    session.add(batch)
    session.flush()
    for item in items:
        if item.upload is not None:
            create_job_from_upload(session, storage, JobKind.PREDICT, item.params, item.upload, owner=owner,
                                   batch_id=batch.id)
        else:
            create_job(session, JobKind.PREDICT, {**item.params, "video_url": item.video_url}, owner=owner,
                       batch_id=batch.id)
    return batch


def cancel_batch(session: Session, batch_id: str, principal: Principal) -> tuple[Batch, list[str]]:
    """Cancel every job of the batch that has not ended (the finished ones keep their results); the batch ends
    when its last job does, as always. (The batch, the ids of the jobs stopped.)"""
    batch = get(session, Batch, batch_id, "batch", principal)
    stopped = [job for job in batch_jobs(session, batch.id) if not JobStatus(job.status).finished]
    for job in stopped:
        move_job(session, job, JobStatus.CANCELED)
    session.flush()
    return batch, [job.id for job in stopped]
