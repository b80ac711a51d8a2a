"""Which error code and message a failed job gets: one table, applied once, in the task wrapper.

Handlers do not catch to translate: they let typed errors (``ftcn.errors``, ``jobs.urls``, ``jobs.archives``,
``jobs.storage``) rise, or raise :class:`JobFailed` for a decision of their own (a model that no longer exists).
Messages are shown to the job's owner, so every server path in them is cut to its last part; an exception that is
not in the table is a bug: "internal", with the details in the worker log only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded

from ftcn import errors as ftcn_errors
from jobs.archives import UnsafeArchive
from jobs.errors import ErrorCode
from jobs.params import InvalidParams
from jobs.storage import SourceTooLarge, SourceUnreadable, StorageError
from jobs.urls import FetchFailed, UnsafeURL


class JobFailed(Exception):
    """A failure a handler decides itself, with its code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class JobCanceled(Exception):
    """The job was canceled while it ran; its handler stopped (the job keeps its canceled status)."""


#: Exception class -> code, most specific first (the first isinstance match wins).
CODES: tuple[tuple[type[BaseException], ErrorCode], ...] = (
    (UnsafeURL, ErrorCode.BAD_URL),
    (FetchFailed, ErrorCode.BAD_URL),
    (UnsafeArchive, ErrorCode.BAD_ARCHIVE),
    (StorageError, ErrorCode.STORAGE_UNAVAILABLE),
    (SourceTooLarge, ErrorCode.TOO_LARGE),
    (SourceUnreadable, ErrorCode.BAD_SOURCE),
    (ftcn_errors.NotAVideo, ErrorCode.NOT_A_VIDEO),
    (ftcn_errors.VideoTooLarge, ErrorCode.VIDEO_TOO_LARGE),
    (ftcn_errors.InvalidVideo, ErrorCode.INVALID_VIDEO),
    (ftcn_errors.InvalidSource, ErrorCode.BAD_DATASET),
    (ftcn_errors.DatasetError, ErrorCode.CANNOT_TRAIN),
    (ftcn_errors.CheckpointError, ErrorCode.BAD_CHECKPOINT),
    (ftcn_errors.BackendUnavailable, ErrorCode.UNKNOWN_BACKEND),
    (ftcn_errors.BadOption, ErrorCode.BAD_OPTION),
    (InvalidParams, ErrorCode.BAD_OPTION),
)

_PATH = re.compile(r"(?<![\w.:/])(?:/[^/\s'\"():,]+)+/([^/\s'\"():,]+)")


def without_paths(message: str) -> str:
    """Every absolute path in ``message`` cut to its last part ('/tmp/ftcn-job-x/input.mp4' -> 'input.mp4')."""
    return _PATH.sub(r"\1", message)


@dataclass(frozen=True)
class Failure:
    code: ErrorCode
    message: str
    internal: bool = False  # a bug: log the traceback


def classify(exc: BaseException, time_limit_s: float) -> Failure:
    """The code and user-facing message for an exception that ended a job."""
    if isinstance(exc, JobFailed):
        return Failure(exc.code, without_paths(str(exc)))
    if isinstance(exc, SoftTimeLimitExceeded):
        return Failure(ErrorCode.TIMEOUT, f"the job ran out of time (limit {time_limit_s:g} s)")
    code = next((code for kind, code in CODES if isinstance(exc, kind)), None)
    if code is None:
        return Failure(ErrorCode.INTERNAL, f"internal error ({type(exc).__name__}); see the worker log",
                       internal=True)
    return Failure(code, without_paths(str(exc)))
