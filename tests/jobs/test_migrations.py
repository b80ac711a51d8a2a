"""The Alembic migrations and the SQLAlchemy models agree (autogenerate finds no difference), on the embedded
SQLite and on a real PostgreSQL server started by the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from jobs.db import make_engine, upgrade
from jobs.models import Base
from tests.servers import postgres_server


def assert_schema_matches_models(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert {"jobs", "models", "datasets", "alembic_version"} <= set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    upgrade(url)  # running it again is a no-op


def test_sqlite(tmp_path: Path) -> None:
    assert_schema_matches_models(f"sqlite:///{tmp_path / 'ftcn.sqlite3'}")


@pytest.mark.integration
def test_postgresql() -> None:
    with postgres_server() as url:
        assert_schema_matches_models(url)
