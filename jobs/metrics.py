"""Prometheus metrics of the API and the workers, defined in one place (the only importer of prometheus_client).

Both sides run several processes (gunicorn workers, Celery's prefork pool), so the metrics use prometheus-client's
multiprocess mode whenever ``PROMETHEUS_MULTIPROC_DIR`` is set before this module is first imported: each process
writes its samples to files in that folder and a scrape adds them up. :func:`jobs.multiproc.prepare` sets it in
the parent process before anything forks: ``api.gunicorn_conf`` for the API, ``worker.app`` for Celery. Without
it (a single process: tests, ``flask run``) the default registry serves.

Figures that are true of the whole service rather than of one process, jobs by kind and status, and queue depths,
are read at scrape time from the database and Redis (:class:`ServiceCollector`), so every API replica reports the
same numbers and none is lost when a process restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds: from sub-second API calls to day-long training jobs.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
                    4 * 3600, 12 * 3600, 24 * 3600)

HTTP_REQUESTS = Counter("ftcn_http_requests_total", "API requests answered, by route template, method and status",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("ftcn_http_request_duration_seconds", "API request time, by route template", ["route"],
                         buckets=DURATION_BUCKETS[:13])
JOBS_SUBMITTED = Counter("ftcn_jobs_submitted_total", "jobs created through the API, by kind", ["kind"])
JOBS_FINISHED = Counter("ftcn_jobs_finished_total", "jobs a worker ran to an end, by kind and status",
                        ["kind", "status"])
JOB_SECONDS = Histogram("ftcn_job_duration_seconds", "a job's run on a worker, claim to end, by kind and status",
                        ["kind", "status"], buckets=DURATION_BUCKETS)
JOB_WAIT_SECONDS = Histogram("ftcn_job_queue_wait_seconds", "from submission to a worker taking the job, by kind",
                             ["kind"], buckets=DURATION_BUCKETS)
STAGE_SECONDS = Histogram("ftcn_stage_seconds",
                          "seconds per pipeline stage of a predict job (decode, detect, model, encode ...)",
                          ["stage"], buckets=DURATION_BUCKETS[:16])
WEBHOOK_ATTEMPTS = Counter("ftcn_webhook_deliveries_total",
                           "webhook delivery attempts, by outcome: delivered, retry (will be tried again), failed "
                           "(given up)", ["outcome"])


def observe_stages(timings_s: dict[str, float], encode_s: float | None = None) -> None:
    """A predict job's stage split (``result["timings_s"]``) into the stage histogram; the pipeline's own
    names are kept, "total" (the wall time; stages overlap in the stream) is not."""
    for stage, seconds in timings_s.items():
        if stage != "total":
            STAGE_SECONDS.labels(stage=stage).observe(seconds)
    if encode_s is not None:
        STAGE_SECONDS.labels(stage="encode").observe(encode_s)


class ServiceCollector(Collector):
    """Jobs per kind and status (the database) and messages waiting per queue (Redis), read at scrape time."""

    def __init__(self, job_counts: Callable[[], list[tuple[str, str, int]]],
                 queue_depths: Callable[[], dict[str, int]]) -> None:
        self.job_counts, self.queue_depths = job_counts, queue_depths

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily("ftcn_jobs", "jobs in the database, by kind and status", labels=["kind", "status"])
        for kind, status, count in self.job_counts():
            jobs.add_metric([kind, status], count)
        yield jobs
        depth = GaugeMetricFamily("ftcn_queue_depth", "messages waiting in each Redis queue", labels=["queue"])
        for queue, count in sorted(self.queue_depths().items()):
            depth.add_metric([queue], count)
        yield depth


def exposition(*extra: Collector) -> bytes:
    """The text a scrape gets: this process's (or, in multiprocess mode, every process's) metrics, and
    ``extra`` collectors."""
    service = CollectorRegistry()
    for collector in extra:
        service.register(collector)
    return generate_latest(_process_registry()) + generate_latest(service)


def multiprocess() -> bool:
    """Whether prometheus-client runs in multiprocess mode: its own decision, taken once when it was imported (it
    reads ``PROMETHEUS_MULTIPROC_DIR`` then), so it is asked rather than the environment read again here."""
    return _values.ValueClass is not _values.MutexValue


def _process_registry() -> CollectorRegistry:
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)
    return registry


def mark_process_dead(pid: int) -> None:
    """A finished process's live gauges leave the multiprocess folder (its counters stay, as they should)."""
    if multiprocess():
        _multiprocess.mark_process_dead(pid)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """The worker's own scrape endpoint (its processes' metrics), on a thread of the calling process."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=_process_registry())
