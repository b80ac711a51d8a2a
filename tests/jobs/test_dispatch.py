"""The fair-sharing rule (jobs.dispatch.choose) on plain data, and the dispatch plan on a real database."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from jobs.db import make_engine, session_scope, upgrade
from jobs.dispatch import Waiting, choose, plan_dispatch
from jobs.models import Job, utcnow
from jobs.service import create_job
from jobs.states import JobKind, JobStatus

NOW = utcnow()


def waiting(owner: str, count: int, start: int = 0, kind: JobKind = JobKind.PREDICT,
            in_batch: bool = False) -> list[Waiting]:
    prefix = owner if kind is JobKind.PREDICT else f"{owner}-{kind.value}-"
    return [Waiting(f"{prefix}{i}", kind, owner, in_batch, NOW + timedelta(seconds=start + i)) for i in range(count)]


def test_owners_take_turns_up_to_the_cap() -> None:
    jobs = waiting("a", 50) + waiting("b", 1, start=100)
    chosen = [job.id for job in choose(jobs, Counter(), cap=2)]
    assert chosen == ["a0", "b0", "a1"]  # a's oldest job waits longest: a goes first, then b, then a again


def test_jobs_already_out_count_against_the_cap() -> None:
    jobs = waiting("a", 50) + waiting("b", 1, start=100)
    assert [job.id for job in choose(jobs, Counter({("a", "predict"): 2}), cap=2)] == ["b0"]


def test_an_owners_single_jobs_go_before_its_batch() -> None:
    jobs = waiting("a", 5, in_batch=True) + [Waiting("single", JobKind.PREDICT, "a", False, NOW + timedelta(hours=1))]
    assert [job.id for job in choose(jobs, Counter(), cap=1)] == ["single"]


def test_queues_are_counted_apart_and_no_cap_means_first_come() -> None:
    jobs = waiting("a", 3) + waiting("a", 2, start=10, kind=JobKind.PREPROCESS)
    assert [job.id for job in choose(jobs, Counter(), cap=1)] == ["a0", "a-preprocess-0"]
    assert [job.id for job in choose(waiting("a", 3) + waiting("b", 1, start=-1), Counter(), cap=0)] == \
        ["b0", "a0", "a1", "a2"]


def test_plan_marks_what_it_hands_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    sessions = sessionmaker(make_engine(url), expire_on_commit=False)
    with session_scope(sessions) as session:
        ids = [create_job(session, JobKind.PREDICT, {"n": n}, owner="a").id for n in range(5)]
        other = create_job(session, JobKind.PREDICT, {}, owner="b").id
        canceled = create_job(session, JobKind.PREDICT, {}, owner="c").id
        session.get(Job, canceled).move_to(JobStatus.CANCELED)
    with session_scope(sessions) as session:
        first = plan_dispatch(session, cap=2)
    assert [job_id for _, job_id in first] == [ids[0], other, ids[1]]
    with session_scope(sessions) as session:
        assert plan_dispatch(session, cap=2) == []  # a holds its two places; nothing else waits
        session.get(Job, ids[0]).move_to(JobStatus.RUNNING)
        session.get(Job, ids[0]).move_to(JobStatus.SUCCEEDED)
    with session_scope(sessions) as session:
        assert plan_dispatch(session, cap=2) == [(JobKind.PREDICT, ids[2])]
        assert session.get(Job, ids[2]).dispatched_at is not None and session.get(Job, ids[3]).dispatched_at is None
