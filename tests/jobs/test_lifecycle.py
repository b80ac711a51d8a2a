"""The lease rules (claim, heartbeat, attempts) and the reconciler's decisions, on a real SQLite database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import sessionmaker

from jobs.db import session_scope
from jobs.lifecycle import Claim, beat, claim
from jobs.models import Job, utcnow
from jobs.reconcile import plan
from jobs.service import create_job
from jobs.settings import Settings
from jobs.states import JobKind

SETTINGS = Settings(heartbeat_s=10, max_attempts=3, reconcile_interval_s=30, predict_time_limit_s=1800)


def new_job(sessions: sessionmaker) -> str:
    with session_scope(sessions) as session:
        return create_job(session, JobKind.PREDICT, {"model_id": "m"}).id


def take(sessions: sessionmaker, job_id: str, worker: str, now=None) -> Claim:
    with session_scope(sessions) as session:
        return claim(session, job_id, worker, SETTINGS, now)


def row(sessions: sessionmaker, job_id: str) -> Job:
    with session_scope(sessions) as session:
        return session.get(Job, job_id)


def test_a_live_holder_keeps_its_job_and_a_dead_one_loses_it(sessions: sessionmaker) -> None:
    job_id = new_job(sessions)
    assert take(sessions, job_id, "a:1") is Claim.RUN
    assert row(sessions, job_id).status == "running" and row(sessions, job_id).attempts == 1
    assert take(sessions, job_id, "b:2") is Claim.BUSY  # a duplicate delivery while a:1 beats
    with session_scope(sessions) as session:
        beat(session, job_id, "a:1", {"stage": "faces", "progress": 40.0})
        beat(session, job_id, "b:2", {"progress": 99.0})  # not the holder: ignored
    assert row(sessions, job_id).progress == 40.0
    later = utcnow() + timedelta(seconds=31)  # three missed beats: a:1 is gone
    assert take(sessions, job_id, "b:2", later) is Claim.RUN
    job = row(sessions, job_id)
    assert job.worker == "b:2" and job.attempts == 2 and job.status == "running"


def test_a_job_that_keeps_killing_workers_fails_with_a_reason(sessions: sessionmaker) -> None:
    job_id = new_job(sessions)
    moment = utcnow()
    for attempt in range(1, 4):
        moment += timedelta(seconds=31)
        assert take(sessions, job_id, f"w:{attempt}", moment) is Claim.RUN
    assert take(sessions, job_id, "w:4", moment + timedelta(seconds=31)) is Claim.ABANDONED
    job = row(sessions, job_id)
    assert job.status == "failed" and job.error_code == "worker-lost" and "3 time(s)" in job.error_message
    assert take(sessions, job_id, "w:5") is Claim.GONE


def test_reconciler_decisions(sessions: sessionmaker) -> None:
    now = utcnow()
    ids = {name: new_job(sessions) for name in ("lost", "fresh", "waiting", "held", "alive", "dead", "ancient")}
    with session_scope(sessions) as session:
        jobs = {name: session.get(Job, job_id) for name, job_id in ids.items()}
        for name in ("lost", "waiting", "held"):
            jobs[name].created_at = now - timedelta(minutes=5)
        for name in ("lost", "waiting"):  # handed to the broker 5 minutes ago; "held" waits its owner's turn
            jobs[name].dispatched_at = now - timedelta(minutes=5)
        jobs["fresh"].dispatched_at = now
        for name, beat_age, started_age in (("alive", 2, 60), ("dead", 120, 600), ("ancient", 7200, 7200)):
            jobs[name].status, jobs[name].attempts = "running", 1
            jobs[name].heartbeat_at = now - timedelta(seconds=beat_age)
            jobs[name].started_at = now - timedelta(seconds=started_age)
        requeue, abandon = plan(list(jobs.values()), {ids["waiting"]}, set(), SETTINGS, now)
    assert {j.id for j in requeue} == {ids["lost"], ids["dead"]}  # fresh: may still be on its way to Redis
    assert {j.id for j, _ in abandon} == {ids["ancient"]}  # silent and past the 1800 s limit
    assert "time limit of 1800 s" in abandon[0][1]


def test_a_redelivered_job_past_its_time_limit_fails_like_the_reconciler_would_fail_it(sessions) -> None:
    """The outcome of a silent job past its hard limit must not depend on whether its message survived: claim
    (message redelivered) and the reconciler (message lost) apply one rule."""
    job_id = new_job(sessions)
    started = utcnow()
    assert take(sessions, job_id, "gone:1", started) is Claim.RUN
    past_limit = started + timedelta(seconds=SETTINGS.predict_time_limit_s + 1)
    with session_scope(sessions) as session:
        _, abandon = plan([session.get(Job, job_id)], set(), set(), SETTINGS, past_limit)
    assert take(sessions, job_id, "new:2", past_limit) is Claim.ABANDONED
    job = row(sessions, job_id)
    assert job.status == "failed" and job.error_code == "worker-lost"
    assert job.error_message == abandon[0][1] and "time limit" in job.error_message
