"""The folder where each process of a pool writes its Prometheus samples, prepared before any process starts.

Must run in the parent process (gunicorn's master, Celery's main process) before ``prometheus_client`` is
imported anywhere, and must not import it: the library picks its multiprocess mode at import time, from
``PROMETHEUS_MULTIPROC_DIR`` (``jobs.metrics``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare(prefix: str) -> str:
    """The samples folder: a fresh one unless the environment names one, which is emptied (samples left by an
    earlier run would add to this run's counters)."""
    named = os.environ.get(VARIABLE)
    if not named:
        named = tempfile.mkdtemp(prefix=prefix)
        os.environ[VARIABLE] = named
    folder = Path(named)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return named
