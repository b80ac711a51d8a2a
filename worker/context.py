"""What a handler is given (:class:`JobContext`) and what it returns (:class:`Succeeded` or :class:`Split`).

A handler ends in one of two ordinary ways: its result document, or its job split into segments that other
workers carry on (``jobs.segments``). Both are values; exceptions are left for what went wrong, which the
bookkeeping (``worker.bookkeeping``) turns into the job's error in one table (``worker.failures``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.db import unit_of_work
from jobs.models import Job
from jobs.params import PredictParams, read_params
from jobs.settings import Settings
from jobs.states import JobStatus
from jobs.storage import Storage
from jobs.urls import fetch_url

if TYPE_CHECKING:
    from worker.state import WorkerState

T = TypeVar("T")


@dataclass(frozen=True)
class Succeeded:
    """The job is done: ``result`` is what its row records (and the API shows)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Split:
    """The job was split into ``segments`` segments, recorded and sent; they record its end (``worker.segments``)."""

    segments: int


Outcome = Succeeded | Split


@dataclass
class JobContext:
    job_id: str
    params: dict[str, Any]
    state: WorkerState
    progress: Callable[[str, float], None]
    owner: str | None = None  # the job's owner: datasets and models it creates belong to them

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def storage(self) -> Storage:
        return self.state.storage

    def db(self, operation: Callable[[Session], T]) -> T:
        """One unit of work, retried while the database is unavailable (a restart delays the job, never fails it)."""
        return unit_of_work(self.state.sessions, operation)

    def canceled(self) -> bool:
        """Whether the job was canceled (or deleted) since it started."""
        return self.db(lambda session: (session.scalar(select(Job.status).where(Job.id == self.job_id))
                                        in (None, JobStatus.CANCELED.value)))


def derived_id(job_id: str, what: str) -> str:
    """The id of what a job creates, derived from the job's id: a rerun after a crash writes the same rows and keys
    instead of a second dataset or model."""
    return str(uuid.uuid5(uuid.UUID(job_id), what))


def video_limits(settings: Settings) -> Any:
    """How the worker decodes every input (``ftcn.video.decode.VideoLimits``): the service's bounds, in the cage
    (``ftcn.video.cage``): a file from a stranger never shares a process with the worker's secrets."""
    from ftcn.video.cage import Cage
    from ftcn.video.decode import VideoLimits

    return VideoLimits(max_duration_s=settings.max_video_s,
                       cage=Cage(memory_mb=settings.decode_memory_mb, cpu_s=settings.decode_cpu_s))


def dataset_store(ctx: JobContext, prefix: str) -> Any:
    """The ``ftcn`` dataset store at ``prefix`` of the service's storage, opened with the service's S3 endpoint
    (``ftcn.datasets.storage.DatasetStore``)."""
    from ftcn.datasets.storage import open_store

    return open_store(ctx.storage.dataset_location(prefix), ctx.settings.s3_endpoint_url)


def fetch_input(ctx: JobContext, video: Path) -> None:
    """The job's video, from storage (uploads) or from its URL."""
    params = read_params(PredictParams, ctx.params)
    if params.input_key is not None:
        ctx.storage.download(params.input_key, video)
    elif params.video_url is not None:
        fetch_url(params.video_url, video, max_bytes=ctx.settings.max_upload_mb * 1024 * 1024,
                  allowlist=ctx.settings.url_allowlist)
    else:  # the API always records one of them: a row without either is a bug (an internal failure)
        raise RuntimeError(f"predict job {ctx.job_id} names no input")
