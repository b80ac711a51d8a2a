"""The worker's Celery app, wired top-down: the state is built, then the tasks are registered on it, in the shape of
Flask's ``celery_init_app``. Celery finds the app as ``worker.celery`` (``celery -A worker worker``), which calls
:func:`worker_state` on first access; nothing is built at import time.

The signal receivers here are the worker process's life: logging set up, the metrics folder prepared before the
pool forks, connections dropped and models warmed in each pool child, and in the main process the reconciler, the
retention sweep, the webhook dispatcher and the metrics endpoint.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from typing import Any

from celery.signals import setup_logging, worker_init, worker_process_init, worker_process_shutdown, worker_ready

from jobs import erasure
from jobs.db import session_scope
from jobs.queue import TASK_NAME, WEBHOOK_TASK, make_celery
from jobs.reconcile import reconcile
from jobs.segments import MERGE_TASK, SEGMENT_TASK
from jobs.settings import Settings
from worker.segments import merge, run_segment
from worker.state import WorkerState
from worker.tasks import execute
from worker.webhooks import deliver, start_dispatcher

log = logging.getLogger(__name__)


def build(settings: Settings) -> WorkerState:
    """A worker state with its Celery app and every task registered on it, each bound to this state."""
    state = WorkerState(settings=settings, celery=make_celery(settings))
    task = state.celery.task

    @task(name=TASK_NAME, bind=True)
    def run_job(_task: Any, job_id: str) -> None:
        execute(job_id, state)

    @task(name=SEGMENT_TASK, bind=True)
    def segment_task(_task: Any, seg_id: str) -> None:
        run_segment(state, seg_id)

    @task(name=MERGE_TASK, bind=True)
    def merge_task(_task: Any, job_id: str) -> None:
        merge(state, job_id)

    @task(name=WEBHOOK_TASK, bind=True, acks_late=True)
    def deliver_task(_task: Any, delivery_id: str) -> None:
        deliver(state, delivery_id)

    return state


@functools.cache
def worker_state() -> WorkerState:
    """The process's one state, from the environment; the first call (Celery loading ``worker.celery``) builds it."""
    return build(Settings.from_env())


@setup_logging.connect
def _logging(loglevel: Any = None, **_: Any) -> None:
    """Celery leaves logging to us when this signal has a receiver: text or JSON lines, job ids on them."""
    from jobs.logs import configure

    configure(worker_state().settings, "worker", loglevel or logging.INFO)


@worker_init.connect
def _before_pool(**_: Any) -> None:
    """In the worker's main process, before the pool forks and before anything imports prometheus_client: the
    folder the pool's processes write their metrics to (``jobs.multiproc``)."""
    from jobs.multiproc import prepare

    prepare("ftcn-worker-metrics-")


@worker_process_shutdown.connect
def _pool_child_gone(pid: int | None = None, **_: Any) -> None:
    from jobs.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@worker_process_init.connect
def _forked(**_: Any) -> None:
    state = worker_state()
    state.after_fork()
    threading.Thread(target=_warm_up, args=(state,), name="ftcn-warm-up", daemon=True).start()


def _warm_up(state: WorkerState) -> None:
    """In each pool process, beside its first jobs (not before: the process is ready at once)."""
    started = time.perf_counter()
    try:
        prepared = state.warm_up()
    except Exception:  # noqa: BLE001 - a job prepares what it needs itself; the warm-up only saves it the wait
        log.warning("warm-up failed; jobs will prepare their model themselves", exc_info=True)
        return
    model = f"model {prepared['model_id']}" if prepared["model_id"] else "no default model"
    log.info("warm-up: %s; face backend %s ready in %.1f s", model, prepared["backend"], time.perf_counter() - started)


def _sweep_forever(state: WorkerState) -> None:
    """Reconcile SQL with the broker; the worker that won the sweep's lock also enforces retention."""
    first = True
    while True:
        swept = False
        try:
            swept = "skipped" not in reconcile(state.settings, state.sessions, state.celery, lock=not first)
            first = False
        except Exception:  # noqa: BLE001 - the next sweep tries again (Redis or the database may be down)
            log.warning("reconciler sweep failed", exc_info=True)
        if swept:
            try:
                with session_scope(state.sessions) as session:
                    erased = erasure.sweep(session, state.storage, state.settings)
                if any(erased.values()):
                    log.info("retention sweep: %s", erased)
            except Exception:  # noqa: BLE001 - storage or database down: the next sweep tries again
                log.warning("retention sweep failed", exc_info=True)
        time.sleep(state.settings.reconcile_interval_s)


@worker_ready.connect
def _start_reconciler(**_: Any) -> None:
    """In the main process: a sweep at start-up (jobs lost while no worker ran), then one every interval; the
    webhook dispatcher; the metrics endpoint (FTCN_WORKER_METRICS_PORT, 0 = none)."""
    state = worker_state()
    threading.Thread(target=_sweep_forever, args=(state,), daemon=True, name="reconciler").start()
    start_dispatcher(state)
    if state.settings.worker_metrics_port:
        from jobs.metrics import serve

        try:
            serve(state.settings.worker_metrics_port)
        except OSError as exc:  # another worker on this host has the port: its scrape covers only itself
            log.warning("metrics endpoint not started on port %d: %s", state.settings.worker_metrics_port, exc)
