"""Every status in the service and the moves allowed between them, in one place: jobs, their segments, webhook
deliveries and batches. Code that changes a status asks its machine (:meth:`Machine.check`); a move not in the
table raises.

A job: queued -> running -> succeeded | failed; queued | running -> canceled. It may also go back from running to
queued when its worker died and the broker redelivers it (at-least-once delivery with late acks).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar


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


S = TypeVar("S", bound=Enum)


@dataclass(frozen=True)
class Machine(Generic[S]):
    """A status enum and the moves allowed from each of its values."""

    noun: str
    statuses: type[S]
    allowed: dict[S, frozenset[S]]

    def check(self, current: S | str, new: S | str) -> S:
        """The new status if ``current -> new`` is allowed; raises :class:`IllegalTransition` otherwise."""
        current, new = self.statuses(current), self.statuses(new)
        if new not in self.allowed[current]:
            raise IllegalTransition(f"a {current.value} {self.noun} cannot become {new.value}")
        return new

    def final(self, status: S | str) -> bool:
        return not self.allowed[self.statuses(status)]


ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.QUEUED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


JOB = Machine("job", JobStatus, ALLOWED)


def check_transition(current: JobStatus | str, new: JobStatus | str) -> JobStatus:
    """The new status if ``current -> new`` is allowed; raises :class:`IllegalTransition` otherwise."""
    return JOB.check(current, new)


class SegmentStatus(str, Enum):
    """A segment of a split job (``jobs.segments``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


#: Running -> running: a silent worker's segment taken over by another; running -> queued: failed once, sent again;
#: queued -> failed: out of attempts before it could run again (its job fails with it).
SEGMENT = Machine("segment", SegmentStatus, {
    SegmentStatus.QUEUED: frozenset({SegmentStatus.RUNNING, SegmentStatus.FAILED}),
    SegmentStatus.RUNNING: frozenset({SegmentStatus.RUNNING, SegmentStatus.DONE, SegmentStatus.QUEUED,
                                      SegmentStatus.FAILED}),
    SegmentStatus.DONE: frozenset(),
    SegmentStatus.FAILED: frozenset(),
})


class DeliveryStatus(str, Enum):
    """A webhook event's delivery (``jobs.webhooks``): pending while attempts remain."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


DELIVERY = Machine("webhook delivery", DeliveryStatus, {
    DeliveryStatus.PENDING: frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.FAILED}),
    DeliveryStatus.DELIVERED: frozenset(),
    DeliveryStatus.FAILED: frozenset(),
})


class BatchStatus(str, Enum):
    """A batch (``jobs.batches``): running until its last job ends (its ``finished_at`` is then set)."""

    RUNNING = "running"
    FINISHED = "finished"


BATCH = Machine("batch", BatchStatus, {BatchStatus.RUNNING: frozenset({BatchStatus.FINISHED}),
                                       BatchStatus.FINISHED: frozenset()})
