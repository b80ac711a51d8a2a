"""What each job kind does, one module each: fetch its inputs, call ``ftcn``, store artifacts, return its outcome
(``worker.context``). The bookkeeping around a handler is ``worker.bookkeeping``'s."""

from __future__ import annotations

from collections.abc import Callable

from jobs.states import JobKind
from worker.context import JobContext, Outcome
from worker.handlers.predict import predict
from worker.handlers.preprocess import preprocess
from worker.handlers.train import train

HANDLERS: dict[JobKind, Callable[[JobContext], Outcome]] = {
    JobKind.PREDICT: predict, JobKind.PREPROCESS: preprocess, JobKind.TRAIN: train,
}
