"""A job's state machine, in one place: queued -> running -> succeeded | failed; queued | running -> canceled.
(Segments, webhook deliveries and batches keep their statuses as strings of their own, without a table yet.)

A job may also go back from running to queued when its worker died and the broker redelivers it (at-least-once
delivery with late acks); every other move raises.
"""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class JobKind(str, Enum):
    PREDICT = "predict"
    PREPROCESS = "preprocess"
    TRAIN = "train"


class IllegalTransition(RuntimeError):
    """A status change the state machine does not allow."""


ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.QUEUED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


def check_transition(current: JobStatus | str, new: JobStatus | str) -> JobStatus:
    """The new status if ``current -> new`` is allowed; raises :class:`IllegalTransition` otherwise."""
    current, new = JobStatus(current), JobStatus(new)
    if new not in ALLOWED[current]:
        raise IllegalTransition(f"a {current.value} job cannot become {new.value}")
    return new
