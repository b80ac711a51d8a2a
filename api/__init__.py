"""The REST API: ``create_app()`` builds the Flask app from settings; nothing happens at import time.

Run with ``flask --app api run`` (development) or ``gunicorn 'api:create_app()'`` (production).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from api.access import RateLimits, make_rate_limits
from api.bodies import DigestingRequest
from api.problems import register_error_handlers
from jobs.db import make_engine, upgrade
from jobs.queue import QUEUE_FOR_KIND, Publisher, make_celery
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
                       for queue in sorted(set(QUEUE_FOR_KIND.values()))}
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
    app.extensions["ftcn"] = AppState(
        settings=settings,
        sessions=sessionmaker(make_engine(settings.database_url), expire_on_commit=False),
        storage=open_storage(settings),
        celery=celery,
        publisher=Publisher(celery, settings),
        rate_limits=make_rate_limits(settings),
    )
    register_error_handlers(app)
    from api.ui import ui
    from api.views import bp

    app.register_blueprint(bp)
    app.register_blueprint(ui)
    return app
