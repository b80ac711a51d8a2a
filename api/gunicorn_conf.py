"""gunicorn settings for the API: ``gunicorn -c python:api.gunicorn_conf 'api:create_app()'``.

Runs in gunicorn's master before it forks: the Prometheus samples folder is prepared here, so every worker
process writes its metrics where a scrape of any of them adds them all up (``jobs.metrics``).
"""

from __future__ import annotations

from typing import Any

from jobs.multiproc import prepare

prepare("ftcn-api-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    from jobs.metrics import mark_process_dead

    mark_process_dead(worker.pid)
