"""The error codes a failed job carries, in one enum: clients branch on them, so they are part of the API.

The worker decides which code an exception gets in one table (``worker.failures``); the bookkeeping rules that
fail a job without running it (``jobs.lifecycle``, ``jobs.reconcile``) use the same codes.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    # the input
    BAD_URL = "bad-url"  # the video URL is unsafe or could not be fetched
    INVALID_VIDEO = "invalid-video"  # not a decodable video
    NOT_A_VIDEO = "not-a-video"  # a still image or a single frame: nothing moves, FTCN cannot judge it
    VIDEO_TOO_LARGE = "video-too-large"  # over a duration, frame-count or frame-size bound
    BAD_ARCHIVE = "bad-archive"  # a dataset archive that is unsafe or unreadable
    BAD_DATASET = "bad-dataset"  # an archive or prefix without the real/ and fake/ layout or a manifest
    BAD_SOURCE = "bad-source"  # an s3:// dataset prefix that cannot be read or is empty
    TOO_LARGE = "too-large"  # a dataset source over the count or size bound
    NO_CLIPS = "no-clips"  # preprocessing found no usable face clip in any video
    CANNOT_TRAIN = "cannot-train"  # the dataset cannot train a model (one class, no validation split, ...)
    BAD_CHECKPOINT = "bad-checkpoint"  # a model's weight file cannot be used
    BAD_OPTION = "bad-option"  # an option the pipeline refuses
    # what the job names
    UNKNOWN_MODEL = "unknown-model"
    UNKNOWN_DATASET = "unknown-dataset"
    UNKNOWN_BACKEND = "unknown-backend"  # the face backend is not registered or cannot run on this worker
    # the service
    TIMEOUT = "timeout"  # the job hit its soft time limit
    WORKER_LOST = "worker-lost"  # its worker stopped too often, or it ran past its hard time limit
    STORAGE_UNAVAILABLE = "storage-unavailable"
    INTERNAL = "internal"  # a bug: details in the worker log, never in the message
