"""Celery worker: ``celery -A worker worker -Q predict,train``.

The Celery app is built from FTCN_* settings when this package is imported by the worker command; tasks are thin
(see ``worker.tasks``) and call ``ftcn``.
"""

from jobs.queue import make_celery
from jobs.settings import Settings

celery = make_celery(Settings.from_env())

from worker import tasks  # noqa: E402,F401  (registers the task on the app above)
