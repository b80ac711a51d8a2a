"""Celery worker: ``celery -A worker worker -Q predict,train,webhooks``.

Celery finds its app as ``worker.celery``; the attribute is resolved on first access by the one factory
(``worker.state.worker_state``), so importing this package builds nothing. Jobs run in ``worker.tasks`` (the
bookkeeping around each job), ``worker.handlers`` (what each job kind does) and ``worker.failures`` (which error
code an exception becomes).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from worker.state import worker_state

        return worker_state().celery
    raise AttributeError(name)
