"""The job state machine: every allowed move works, every other raises; timestamps follow."""

from __future__ import annotations

import itertools

import pytest

from jobs.models import Job
from jobs.states import ALLOWED, IllegalTransition, JobStatus, check_transition


@pytest.mark.parametrize("current,new", list(itertools.product(JobStatus, JobStatus)))
def test_transitions(current: JobStatus, new: JobStatus) -> None:
    if new in ALLOWED[current]:
        assert check_transition(current, new) is new
    else:
        with pytest.raises(IllegalTransition, match=f"a {current.value} job cannot become {new.value}"):
            check_transition(current, new)


def test_the_documented_lifecycle() -> None:
    assert ALLOWED[JobStatus.QUEUED] >= {JobStatus.RUNNING, JobStatus.CANCELED}
    assert ALLOWED[JobStatus.RUNNING] >= {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED}
    assert all(not ALLOWED[s] for s in JobStatus if s.finished)


def test_job_move_to_keeps_timestamps_and_attempts() -> None:
    job = Job(kind="predict", status=JobStatus.QUEUED.value, attempts=0)
    job.move_to(JobStatus.RUNNING)
    assert job.started_at is not None and job.attempts == 1 and job.finished_at is None
    job.move_to(JobStatus.QUEUED)  # redelivered after a worker died
    job.move_to(JobStatus.RUNNING)
    assert job.attempts == 2
    job.move_to(JobStatus.SUCCEEDED)
    assert job.finished_at is not None
    with pytest.raises(IllegalTransition):
        job.move_to(JobStatus.RUNNING)
    assert job.status == "succeeded"
