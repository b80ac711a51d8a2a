"""Celery worker: ``celery -A worker worker -Q predict,train,webhooks``.

Celery finds its app as ``worker.celery``; the attribute is resolved on first access by the one factory
(``worker.app.worker_state``), so importing this package builds nothing. The modules, from the bottom up:
``failures`` (which error code an exception becomes), ``state`` (what a worker process holds), ``context`` (what
a handler is given and returns), ``handlers`` (what each job kind does), ``bookkeeping`` (heartbeat, outcome and
end of every task), ``tasks`` and ``segments`` (the job, segment and merge tasks), ``webhooks`` (deliveries), and
``app`` (the Celery app with the tasks registered on it, and the process's signals).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from worker.app import worker_state

        return worker_state().celery
    raise AttributeError(name)
