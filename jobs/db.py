"""Engine and sessions; the schema is owned by Alembic (``migrations/``), upgraded at start."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
T = TypeVar("T")
log = logging.getLogger(__name__)


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # concurrent API + worker on one file
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is safe against application crashes (a power cut may lose the last commits);
            # FULL would fsync on every commit and serialise concurrent submissions behind the disk.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # pre-ping: a connection broken by a database restart is replaced, not handed out; a short connect timeout
    # turns "database down" into a quick 503 instead of a hanging request.
    connect_args = {"connect_timeout": 3} if database_url.startswith("postgresql") else {}
    return create_engine(database_url, pool_pre_ping=True, connect_args=connect_args)


def upgrade(database_url: str) -> None:
    """``alembic upgrade head`` for this database."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_unavailable(error: BaseException) -> bool:
    """A database error that a retry can cure: connection refused or lost (server restarting), SQLite busy."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    return isinstance(error, (OperationalError, InterfaceError)) or (
        isinstance(error, DBAPIError) and error.connection_invalidated)


def with_retry(operation: Callable[[], T], *, deadline_s: float = 120.0, first_wait_s: float = 0.25) -> T:
    """Run ``operation`` (one whole unit of work) again while the database is unavailable, with exponential
    backoff, for at most ``deadline_s``; then the last error propagates. Used by workers for status writes, so a
    database restart delays a job's bookkeeping instead of losing it."""
    deadline = time.monotonic() + deadline_s
    wait = first_wait_s
    while True:
        try:
            return operation()
        except Exception as exc:
            if not is_unavailable(exc) or time.monotonic() + wait > deadline:
                raise
            log.warning("database unavailable (%s); retrying in %.1f s", type(exc).__name__, wait)
            time.sleep(wait)
            wait = min(wait * 2, 8.0)


def unit_of_work(sessions: sessionmaker[Session], operation: Callable[[Session], T], deadline_s: float = 120.0) -> T:
    """``operation(session)`` in its own transaction, run again while the database is unavailable."""
    def unit() -> T:
        with session_scope(sessions) as session:
            return operation(session)
    return with_retry(unit, deadline_s=deadline_s)
