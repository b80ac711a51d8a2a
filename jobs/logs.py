"""Log lines of the API and the workers: plain text or one JSON object a line (``FTCN_LOG_FORMAT``), and the id of
the job a line belongs to on every line written while that job is handled.

The job id travels in a context variable (:func:`job_context`), set by the worker around a job or a webhook
delivery and by the API around a request about one job; a filter copies it onto each record, so no call site has
to pass it (one that runs outside the context, such as a heartbeat thread, passes ``extra={"job_id": ...}``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from jobs.settings import Settings

CURRENT_JOB: contextvars.ContextVar[str | None] = contextvars.ContextVar("ftcn_job_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [job %(job_id)s] %(message)s"


@contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Every line logged inside carries ``job_id``."""
    token = CURRENT_JOB.set(job_id)
    try:
        yield
    finally:
        CURRENT_JOB.reset(token)


class JobIdFilter(logging.Filter):
    """Puts the current job's id on the record (``-`` outside a job), unless the call site gave one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = CURRENT_JOB.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339 UTC), level, logger, message, role, process, job_id, exception."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat().replace("+00:00", "Z"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                "role": self.role, "process": record.process}
        job_id = getattr(record, "job_id", "-")
        if job_id and job_id != "-":
            line["job_id"] = job_id
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str)


def configure(settings: Settings, role: str, level: int | str = logging.INFO) -> None:
    """The root logger writes to stderr in the chosen format; what other libraries log passes through it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter(role) if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "ftcn", False)]:
        root.removeHandler(old)
    handler.ftcn = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
