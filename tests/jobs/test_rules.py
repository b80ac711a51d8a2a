"""Rules of the job records on a real (SQLite) database, one rule at a time: what a move of status brings with it
(``jobs.moves``), the machines of segments, deliveries and batches (``jobs.states``), and how a split job's segments
are claimed, failed, given up and merged (``jobs.segments``)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs import batches, segments, webhooks
from jobs.db import session_scope
from jobs.errors import ErrorCode
from jobs.models import Batch, Job, Segment, WebhookDelivery, utcnow
from jobs.moves import move_job
from jobs.service import create_job
from jobs.settings import Settings
from jobs.states import BATCH, DELIVERY, JOB, SEGMENT, IllegalTransition, JobKind, JobStatus, Machine

SETTINGS = Settings(heartbeat_s=10, max_attempts=2, reconcile_interval_s=30)
HOOK = {"webhook": {"url": "https://hooks.example.org/x", "token_id": None}}


@pytest.mark.parametrize("machine", [JOB, SEGMENT, DELIVERY, BATCH], ids=lambda m: m.noun)
def test_every_machine_allows_its_table_and_nothing_else(machine: Machine) -> None:
    assert set(machine.allowed) == set(machine.statuses)  # every status has its row
    for current, new in itertools.product(machine.statuses, machine.statuses):
        if new in machine.allowed[current]:
            assert machine.check(current, new) is new
        else:
            with pytest.raises(IllegalTransition, match=f"{current.value} {machine.noun} cannot become"):
                machine.check(current.value, new.value)
    assert any(machine.final(s) for s in machine.statuses) and not all(machine.final(s) for s in machine.statuses)


def _deliveries(session: Session) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def test_a_finished_job_records_its_webhook_event_in_the_same_transaction(sessions: sessionmaker) -> None:
    with session_scope(sessions) as session:
        job_id = create_job(session, JobKind.PREDICT, dict(HOOK)).id
        plain = create_job(session, JobKind.PREDICT, {}).id
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        move_job(session, job, JobStatus.RUNNING)
        assert _deliveries(session) == []  # running is not an event
        move_job(session, job, JobStatus.FAILED)
        move_job(session, session.get(Job, plain), JobStatus.CANCELED)  # no webhook asked: none recorded
    with session_scope(sessions) as session:
        assert [(d.job_id, d.event, d.status) for d in _deliveries(session)] == [(job_id, "job.failed", "pending")]
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        with pytest.raises(IllegalTransition):
            move_job(session, job, JobStatus.SUCCEEDED)
        assert len(_deliveries(session)) == 1  # a refused move records nothing


def test_the_last_job_of_a_batch_closes_it_once(sessions: sessionmaker) -> None:
    with session_scope(sessions) as session:
        batch = Batch(total=2, params=dict(HOOK))
        session.add(batch)
        session.flush()
        batch_id = batch.id
        first, second = (create_job(session, JobKind.PREDICT, {}, batch_id=batch_id).id for _ in range(2))
    with session_scope(sessions) as session:
        move_job(session, session.get(Job, first), JobStatus.CANCELED)
        assert session.get(Batch, batch_id).status.value == "running"
        move_job(session, session.get(Job, second), JobStatus.CANCELED)
    with session_scope(sessions) as session:
        batch = session.get(Batch, batch_id)
        assert batch.status.value == "finished" and batch.finished_at is not None
        assert [(d.batch_id, d.event) for d in _deliveries(session)] == [(batch_id, "batch.finished")]
        assert batches.close_finished(session) == 0  # the sweep finds nothing left to close
        with pytest.raises(IllegalTransition, match="a finished batch cannot become finished"):
            batches._close(session, batch)


def test_a_delivery_ends_once(sessions: sessionmaker) -> None:
    with session_scope(sessions) as session:
        job_id = create_job(session, JobKind.PREDICT, dict(HOOK)).id
        move_job(session, session.get(Job, job_id), JobStatus.CANCELED)
    with session_scope(sessions) as session:
        delivery = _deliveries(session)[0]
        retry = webhooks.Outcome(503, "the receiver answered HTTP 503", 5.0)
        assert webhooks.record_attempt(session, delivery, retry, SETTINGS) == "pending"
        gone = webhooks.Outcome(410, "the receiver answered HTTP 410", 5.0, permanent=True)
        assert webhooks.record_attempt(session, delivery, gone, SETTINGS) == "failed"
        assert delivery.finished_at is not None and delivery.next_attempt_at is None
        with pytest.raises(IllegalTransition, match="a failed webhook delivery cannot become delivered"):
            webhooks.record_attempt(session, delivery, webhooks.Outcome(200, None, 5.0), SETTINGS)


def _split_job(sessions: sessionmaker, parts: int) -> tuple[str, list[str]]:
    with session_scope(sessions) as session:
        job_id = create_job(session, JobKind.PREDICT, {}).id
        move_job(session, session.get(Job, job_id), JobStatus.RUNNING)
        plans = [{"index": i, "start": 100 * i, "end": 100 * (i + 1)} for i in range(parts)]
        return job_id, segments.split(session, job_id, plans)


def test_a_segment_is_held_by_one_worker_sent_again_once_then_done_and_merged(sessions: sessionmaker) -> None:
    job_id, ids = _split_job(sessions, 2)
    with session_scope(sessions) as session:
        assert segments.claim_segment(session, ids[0], "w1", SETTINGS).run
        assert segments.claim_segment(session, ids[0], "w2", SETTINGS).why == "busy"  # w1 beats: not w2's
        assert segments.segment_failed(session, ids[0], "w1", ErrorCode.INTERNAL, "boom", SETTINGS)  # sent again
        assert session.get(Segment, ids[0]).status == "queued"
    with session_scope(sessions) as session:
        assert segments.claim_segment(session, ids[0], "w2", SETTINGS).run
        assert segments.segment_done(session, ids[0], "w2", "k0", 1.0) == (1, 2)
        assert segments.segment_done(session, ids[0], "w2", "k0", 1.0) == (1, 2)  # repeating it changes nothing
        assert not segments.claim_merge(session, job_id, "w2", SETTINGS)  # one segment is not done
        assert segments.claim_segment(session, ids[1], "w1", SETTINGS).run
        assert segments.segment_done(session, ids[1], "w1", "k1", 1.0) == (2, 2)
        assert segments.claim_merge(session, job_id, "w1", SETTINGS)
        assert not segments.claim_merge(session, job_id, "w2", SETTINGS)  # w1 holds the merge
        assert segments.result_keys(session, job_id) == ["k0", "k1"]
        assert segments.claim_segment(session, ids[0], "w3", SETTINGS).why == "gone"  # done stays done
        with pytest.raises(IllegalTransition, match="a done segment cannot become queued"):
            SEGMENT.check(session.get(Segment, ids[0]).status, "queued")


def test_a_segment_out_of_attempts_fails_its_job_with_the_reason(sessions: sessionmaker) -> None:
    job_id, ids = _split_job(sessions, 2)
    for worker in ("w1", "w2"):  # max_attempts = 2
        with session_scope(sessions) as session:
            assert segments.claim_segment(session, ids[1], worker, SETTINGS).run
            again = segments.segment_failed(session, ids[1], worker, ErrorCode.INVALID_VIDEO, "bad frame", SETTINGS)
    assert not again
    with session_scope(sessions) as session:
        job, segment = session.get(Job, job_id), session.get(Segment, ids[1])
        assert (segment.status, job.status, job.error_code) == ("failed", "failed", "invalid-video")
        assert "bad frame" in job.error_message
        assert segments.claim_segment(session, ids[0], "w3", SETTINGS).why == "gone"  # the job has ended


def test_the_sweep_sends_silent_segments_again(sessions: sessionmaker) -> None:
    job_id, ids = _split_job(sessions, 2)
    later = utcnow() + timedelta(minutes=10)
    with session_scope(sessions) as session:
        assert segments.claim_segment(session, ids[0], "w1", SETTINGS).run
        resend, merge = segments.sweep(session, SETTINGS, in_broker={ids[1]}, now=later)
    assert (resend, merge) == ([ids[0]], [])  # w1 went silent; the other is still in the broker
    with session_scope(sessions) as session:  # another worker takes over the silent one
        assert segments.claim_segment(session, ids[0], "w2", SETTINGS, now=later).run
