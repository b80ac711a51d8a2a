"""Celery wiring in one place: broker, reliability settings, queues and routing by job kind.

The API uses it only to send tasks by name (it never imports the worker, hence never torch).
"""

from __future__ import annotations

from celery import Celery

from jobs.settings import Settings
from jobs.states import JobKind

TASK_NAME = "worker.run_job"
QUEUE_FOR_KIND = {JobKind.PREDICT: "predict", JobKind.PREPROCESS: "train", JobKind.TRAIN: "train"}
#: (soft, hard) time limits in seconds per kind; Settings.visibility_timeout_s must exceed the longest.
TIME_LIMITS = {JobKind.PREDICT: (1800, 1900), JobKind.PREPROCESS: (6 * 3600, 6 * 3600 + 300),
               JobKind.TRAIN: (24 * 3600, 24 * 3600 + 300)}


def make_celery(settings: Settings) -> Celery:
    app = Celery("ftcn", broker=settings.redis_url)
    app.conf.update(
        task_acks_late=True,  # a job is acknowledged when done, so a dead worker's job is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # long jobs: never hold a second one hostage
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,  # job state lives in the database, not in a result backend
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
    )
    return app


def enqueue(app: Celery, kind: JobKind, job_id: str) -> None:
    soft, hard = TIME_LIMITS[kind]
    app.send_task(TASK_NAME, args=[job_id], queue=QUEUE_FOR_KIND[kind], soft_time_limit=soft, time_limit=hard)
