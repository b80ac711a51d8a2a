"""The REST API: ``create_app()`` builds the Flask app from settings; nothing happens at import time.

Run with ``flask --app api run`` (development) or ``gunicorn -c python:api.gunicorn_conf 'api:create_app()'`` (production).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from flask import Flask, Response, g, request
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from api.access import RateLimits, make_rate_limits
from api.bodies import DigestingRequest
from api.problems import register_error_handlers
from jobs.db import make_engine, upgrade
from jobs.logs import CURRENT_JOB, configure
from jobs.models import Job
from jobs.dispatch import dispatch
from jobs.queue import QUEUES, Publisher, make_celery
from jobs.settings import Settings
from jobs.storage import Storage, open_storage


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    storage: Storage
    celery: Celery
    publisher: Publisher
    rate_limits: RateLimits
    #: secret hash -> (expiry, principal): tokens verified recently by this app (api.access)
    verified_tokens: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def service_collector(self) -> Any:
        """Service-wide figures for a scrape, read now: jobs by kind and status, messages waiting per queue."""
        from jobs.metrics import ServiceCollector

        def job_counts() -> list[tuple[str, str, int]]:
            with self.sessions() as session:
                rows = session.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))
                return [(kind, status, count) for kind, status, count in rows]

        def queue_depths() -> dict[str, int]:
            with self.celery.connection_for_read() as connection:
                client = connection.default_channel.client
                # kombu keeps a queue's prioritised messages in sibling lists (name + "\x06\x16" + priority)
                return {queue: sum(client.llen(name) for name in
                                   (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9)))) for queue in QUEUES}

        return ServiceCollector(job_counts, queue_depths)

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Each dependency checked and reported (deep healthcheck)."""
        checks: dict[str, dict[str, Any]] = {}

        def check(name: str, probe) -> None:
            try:
                detail = probe()
                checks[name] = {"ok": True, **({"detail": detail} if detail else {})}
            except Exception as exc:  # noqa: BLE001 - a health probe reports every failure, never raises
                checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

        def database() -> None:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))

        def redis() -> None:
            with self.celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)

        def storage() -> None:
            self.storage.exists("healthcheck/probe")

        def workers() -> dict[str, list[str]]:
            replies = self.celery.control.inspect(timeout=1.5).active_queues() or {}
            serving = {queue: sorted(w for w, qs in replies.items() if any(q["name"] == queue for q in qs))
                       for queue in QUEUES}
            missing = [q for q, ws in serving.items() if not ws]
            if missing:
                raise RuntimeError(f"no live worker on queue(s) {', '.join(missing)}")
            return serving

        check("database", database)
        check("redis", redis)
        check("storage", storage)
        check("workers", workers)
        return checks


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Flask:
    settings = settings or Settings.from_env()
    if migrate:
        upgrade(settings.database_url)
    app = Flask(__name__)
    app.request_class = DigestingRequest  # uploads are digested as they arrive (api.bodies)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * 1024 * 1024
    celery = make_celery(settings)
    sessions = sessionmaker(make_engine(settings.database_url), expire_on_commit=False)
    app.extensions["ftcn"] = AppState(
        settings=settings,
        sessions=sessions,
        storage=open_storage(settings),
        celery=celery,
        publisher=Publisher(celery, settings, dispatcher=lambda: dispatch(settings, sessions, celery)),
        rate_limits=make_rate_limits(settings),
    )
    register_error_handlers(app)
    configure(settings, "api")
    _observe_requests(app)
    from api.ui import ui
    from api.views import bp

    app.register_blueprint(bp)
    app.register_blueprint(ui)
    return app


def _observe_requests(app: Flask) -> None:
    """Every request is counted and timed by route template (``jobs.metrics``); lines logged while a request about
    one job is handled carry its id (``jobs.logs``)."""
    from jobs.metrics import HTTP_REQUESTS, HTTP_SECONDS

    @app.before_request
    def started() -> None:
        g.started = time.perf_counter()
        job_id = (request.view_args or {}).get("job_id")
        if job_id:
            g.job_token = CURRENT_JOB.set(job_id)

    @app.after_request
    def observed(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(route=route, method=request.method, status=str(response.status_code)).inc()
        if "started" in g:
            HTTP_SECONDS.labels(route=route).observe(time.perf_counter() - g.started)
        return response

    @app.teardown_request
    def leave_job(_: BaseException | None) -> None:
        token = g.pop("job_token", None)
        if token is not None:
            CURRENT_JOB.reset(token)
