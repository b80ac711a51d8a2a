"""Erasure and retention on a real SQLite database and real local storage: what goes, what stays."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from jobs import erasure
from jobs.db import make_engine, session_scope, upgrade
from jobs.keys import job_artifact_key, job_prefix
from jobs.models import Job, utcnow
from jobs.service import create_job_with_input
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from jobs.storage import LocalStorage


@pytest.fixture()
def world(tmp_path: Path) -> tuple[sessionmaker, LocalStorage]:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    return sessionmaker(make_engine(url), expire_on_commit=False), LocalStorage(tmp_path / "storage", "secret")


def finished_job(sessions: sessionmaker, storage: LocalStorage, days_ago: float, status=JobStatus.SUCCEEDED) -> str:
    """A predict job with a stored input and two artifacts, finished ``days_ago``."""
    with session_scope(sessions) as session:
        job = create_job_with_input(session, storage, JobKind.PREDICT,
                                    {"model_id": "m", "filename": "alice.mp4", "sha256": "ab" * 32},
                                    io.BytesIO(b"video bytes" * 1000), "video.mp4", "video/mp4", owner="alice")
        artifacts = {name: job_artifact_key(job.id, name) for name in ("result.json", "annotated.mp4")}
        for key in artifacts.values():
            storage.put_bytes(key, b"artifact")
        job.move_to(JobStatus.RUNNING)
        job.move_to(status)
        job.finished_at = utcnow() - timedelta(days=days_ago)
        job.result = {"verdict": "REAL", "score": 0.1, "coverage": {"share": 1.0}, "artifacts": artifacts}
        return job.id


def test_the_input_is_stored_in_chunks_under_the_job(world) -> None:
    sessions, storage = world
    job_id = finished_job(sessions, storage, 0)
    assert storage.keys(job_prefix(job_id)) == [f"jobs/{job_id}/annotated.mp4", f"jobs/{job_id}/input/video.mp4",
                                                f"jobs/{job_id}/result.json"]
    assert storage.get_bytes(f"jobs/{job_id}/input/video.mp4") == b"video bytes" * 1000


def test_erasing_removes_every_file_and_what_identifies_the_input(world) -> None:
    sessions, storage = world
    job_id, other = finished_job(sessions, storage, 0), finished_job(sessions, storage, 0)
    for _ in range(2):
        with session_scope(sessions) as session:
            erasure.erase_job(session, storage, session.get(Job, job_id), erasure.Reason.OWNER)
    assert storage.keys(job_prefix(job_id)) == [] and len(storage.keys(job_prefix(other))) == 3
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        assert job.erased_reason == "owner" and job.erased_at is not None
        assert job.params == {"model_id": "m"}
        assert job.result == {"verdict": "REAL", "score": 0.1, "coverage": {"share": 1.0}}


def test_erasing_a_queued_job_cancels_it(world) -> None:
    sessions, storage = world
    with session_scope(sessions) as session:
        job = create_job_with_input(session, storage, JobKind.PREDICT, {"model_id": "m"}, io.BytesIO(b"v"),
                                    "video.mp4", "video/mp4")
        erasure.erase_job(session, storage, job, erasure.Reason.ADMIN)
        assert job.status == JobStatus.CANCELED.value and storage.keys(job_prefix(job.id)) == []


def test_retention_sweep(world) -> None:
    sessions, storage = world
    settings = Settings(input_retention_days=7, artifact_retention_days=30)
    fresh, week_old, month_old = (finished_job(sessions, storage, days) for days in (1, 8, 31))
    with session_scope(sessions) as session:
        counts = erasure.sweep(session, storage, settings)
    assert counts == {"inputs": 1, "jobs": 1, "late": 0, "uploads": 0}
    assert len(storage.keys(job_prefix(fresh))) == 3
    assert storage.keys(job_prefix(week_old)) == [f"jobs/{week_old}/annotated.mp4", f"jobs/{week_old}/result.json"]
    assert storage.keys(job_prefix(month_old)) == []
    with session_scope(sessions) as session:
        assert session.get(Job, month_old).erased_reason == "retention"
        assert "input_key" not in session.get(Job, week_old).params
        assert session.get(Job, week_old).erased_at is None

    # a file a worker wrote after the erasure is erased by the next sweep; then nothing is left to do
    storage.put_bytes(job_artifact_key(month_old, "result.json"), b"late")
    with session_scope(sessions) as session:
        assert erasure.sweep(session, storage, settings) == {"inputs": 0, "jobs": 0, "late": 1, "uploads": 0}
    assert storage.keys(job_prefix(month_old)) == []
    with session_scope(sessions) as session:
        assert erasure.sweep(session, storage, settings) == {"inputs": 0, "jobs": 0, "late": 0, "uploads": 0}


def test_zero_days_keeps_everything(world) -> None:
    sessions, storage = world
    job_id = finished_job(sessions, storage, 3650)
    with session_scope(sessions) as session:
        assert erasure.sweep(session, storage, Settings(input_retention_days=0, artifact_retention_days=0)) == {
            "inputs": 0, "jobs": 0, "late": 0, "uploads": 0}
    assert len(storage.keys(job_prefix(job_id))) == 3
