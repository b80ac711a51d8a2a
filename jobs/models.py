"""SQLAlchemy models: jobs, batches, long videos' segments, webhook deliveries, registered models (checkpoints)
and face detectors, direct uploads, preprocessed datasets and API tokens.

Status changes go through ``jobs.moves.move_job`` (which calls :meth:`Job.move_to`, asking the state machine);
nothing else assigns ``status``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.states import BatchStatus, DeliveryStatus, JobStatus, SegmentStatus, check_transition


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; all of ours are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def rfc3339(moment: datetime | None) -> str | None:
    """A stored moment as clients read it: RFC 3339 in UTC with its zone, ``2026-12-02T17:11:45.893303Z``.
    (SQLite returns naive datetimes; every stored moment is UTC.)"""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.QUEUED.value)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    #: Erasure (jobs.erasure): when every stored file of the job was removed and why ("owner", "admin",
    #: "retention"); when the input alone was removed by the input retention.
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    erased_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    input_erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The worker holding the job and its last sign of life; a stale heartbeat means that worker is gone.
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Fair sharing (jobs.dispatch): when the job was handed to the broker; None while it waits its owner's turn.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    #: Reuse (jobs.reuse): digest of input content, model weights and options; the job whose result this one
    #: answers with, when it was answered from a finished one.
    reuse_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reused_from: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    #: The batch the job belongs to (jobs.batches), if any.
    batch_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)

    def move_to(self, new: JobStatus | str) -> JobStatus:
        """The job's status changed, validated by the state machine, timestamps kept in step. The state alone:
        what a finished status brings (its webhook event, its batch closed) is ``jobs.moves.move_job``'s."""
        status = check_transition(self.status, new)
        self.status = status.value
        if status is JobStatus.RUNNING:
            self.started_at = utcnow()
            self.attempts = (self.attempts or 0) + 1
        elif status is JobStatus.QUEUED:
            self.started_at = None
        if status.finished:
            self.finished_at = utcnow()
        return status


class Batch(Base):
    """Many predict jobs submitted together (``POST /batches``), with their labels when the submitter knows them;
    finished when its last job is, which records its ``batch.finished`` webhook event (``jobs.batches``)."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    #: model_id, options and the webhook, as the jobs got them.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The owner-scoped Idempotency-Key (jobs.service.scoped_key) and the request's digest: a retried POST finds
    #: its batch instead of making a second one.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def status(self) -> BatchStatus:
        return BatchStatus.FINISHED if self.finished_at is not None else BatchStatus.RUNNING


def new_message_id() -> str:
    """A Standard Webhooks message id: stable over every retry of one event, so receivers can deduplicate."""
    return f"msg_{uuid.uuid4().hex}"


class WebhookDelivery(Base):
    """One job event to deliver to the job's webhook URL, with every attempt made (``jobs.webhooks``)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_message_id)  # the webhook-id
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    batch_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)  # batch.finished events
    event: Mapped[str] = mapped_column(String(32))  # job.succeeded, job.failed, job.canceled, batch.finished
    url: Mapped[str] = mapped_column(String(2048))
    token_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # whose secret signs it
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)  # jobs.states.DELIVERY
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Until when a dispatcher or a delivering task holds it; a holder that died lets it go when this passes.
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_version: Mapped[int] = mapped_column(Integer, default=0)  # compare-and-set of lease changes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class Segment(Base):
    """One time segment of a long video's predict job (``jobs.segments``): run by any worker, its result stored
    under the job's files; the job is merged when every segment is done."""

    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # "<job id>:<index>"
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    index: Mapped[int] = mapped_column(Integer)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ftcn.predict.segments.SegmentPlan
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.QUEUED.value)  # jobs.states.SEGMENT
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    source_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    storage_key: Mapped[str] = mapped_column(String(500))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_default: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)  # None: shared with all
    #: Its model card (ftcn.cards): training data, validation figures, intended use, demonstration or not.
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: SHA-256 of the checkpoint file: results are reused across models with the same weights (jobs.reuse).
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Detector(Base):
    """Registered face-detector weights (the official RetinaFace and landmark files), shared by every token.

    The offline dlib backend needs no row: its weights ship inside a package.
    """

    __tablename__ = "detectors"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    backend: Mapped[str] = mapped_column(String(32), index=True)
    storage_prefix: Mapped[str] = mapped_column(String(500))
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # role -> {"key", "sha256", "bytes"}
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Upload(Base):
    """A direct upload: a signed PUT target handed to a client, used by at most one job (jobs.uploads)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    storage_key: Mapped[str] = mapped_column(String(500))
    filename: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the job that took it


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    storage_prefix: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Token(Base):
    """An API token. Only the SHA-256 of the secret is stored; the secret is shown once, when created."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    can_train: Mapped[bool] = mapped_column(default=False)
    #: Signs this token's webhook deliveries (Standard Webhooks, ``whsec_`` + base64). Kept in clear because
    #: signing needs it; shown to the token's holder once, when made (token create, POST /me/webhook-secret).
    webhook_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
