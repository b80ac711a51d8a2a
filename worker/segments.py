"""The tasks of a split job (``jobs.segments`` holds the rules): run one segment, and merge them when all are done.

A segment task claims its segment, beats while it runs, stores its result (``ftcn.predict.segments``) under the
job's files and marks it done; the one that completes the set claims the merge and runs it at once. The merge
reads every segment's result, merges tracks and clips, writes the same result document and files as a one-worker
run (``worker.handlers.predict.publish_result``) and finishes the job, with the job's heartbeat held while it works.
Both go through the same bookkeeping as a whole job (``worker.bookkeeping``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import segments
from jobs.db import unit_of_work
from jobs.keys import segment_result_key
from jobs.logs import job_context
from jobs.models import Job
from jobs.queue import enqueue_segments
from jobs.states import JobKind, JobStatus
from worker.bookkeeping import Ending, Heartbeat, close_job, dispatch_next, outcome_of, worker_name
from worker.context import JobContext, Succeeded, fetch_input
from worker.handlers.predict import PredictSetup, publish_result

if TYPE_CHECKING:
    from worker.state import WorkerState

log = logging.getLogger(__name__)


def _context(state: WorkerState, job_id: str, params: dict[str, Any], owner: str | None,
             heart: Heartbeat | None = None) -> JobContext:
    def progress(stage: str, percent: float) -> None:
        if heart is not None:
            heart.pending.update(stage=stage if stage != "annotate" else segments.MERGE, progress=percent)

    return JobContext(job_id=job_id, params=params, state=state, progress=progress, owner=owner)


def run_segment(state: WorkerState, seg_id: str) -> str | None:
    """Run one segment if nobody alive holds it; its status after ("done", "again", "failed"), or None."""
    from ftcn.predict.segments import SegmentPlan
    from ftcn.predict.segments import run_segment as analyse

    settings, me = state.settings, worker_name()
    job_id = segments.job_of(seg_id)
    with job_context(job_id):
        taken = unit_of_work(state.sessions, lambda s: segments.claim_segment(s, seg_id, me, settings))
        if not taken.run:
            log.info("segment %s not run here: %s", seg_id, taken.why)
            return None
        plan = SegmentPlan(**taken.plan)
        started = time.monotonic()
        heart = Heartbeat(state.sessions, seg_id, me, settings.heartbeat_s,
                           beat=lambda session, sid, worker, fields: segments.beat_segment(session, sid, worker))

        def analyse_part() -> Succeeded:
            with heart, tempfile.TemporaryDirectory(prefix="ftcn-segment-") as folder:
                ctx = _context(state, job_id, taken.params, taken.owner)
                video = Path(folder) / "input.mp4"
                fetch_input(ctx, video)
                setup = PredictSetup.of(ctx)
                part = analyse(video, setup.network, setup.checkpoint, setup.backend, setup.options, plan)
                key = segment_result_key(job_id, plan.index)
                ctx.storage.put_bytes(key, json.dumps(part).encode(), "application/json")
                return Succeeded({"key": key})

        ending = outcome_of(analyse_part, JobKind.PREDICT, state, f"segment {seg_id}")
        assert isinstance(ending, Ending)  # a segment never splits
        if (failure := ending.failure) is not None:  # sent again alone, or the job fails with the reason
            again = unit_of_work(state.sessions, lambda s: segments.segment_failed(
                s, seg_id, me, failure.code, failure.message, settings))
            if again:
                enqueue_segments(state.celery, [seg_id], settings)
                return "again"
            dispatch_next(state)
            return "failed"
        key = ending.result["key"]
        seconds = time.monotonic() - started
        done, total = unit_of_work(state.sessions, lambda s: segments.segment_done(s, seg_id, me, key, seconds))
        log.info("segment %s (frames %d-%d) done in %.1f s; %d of %d", seg_id, plan.start, plan.end, seconds, done,
                 total)
        if done == total:
            merge(state, job_id)
        return "done"


def merge(state: WorkerState, job_id: str) -> JobStatus | None:
    """Merge a split job whose segments are all done, if nobody alive is at it; the job's status after."""
    from ftcn.predict.segments import merged_document

    settings, me = state.settings, worker_name()
    with job_context(job_id):
        if not unit_of_work(state.sessions, lambda s: segments.claim_merge(s, job_id, me, settings)):
            return None

        def read(session):
            job = session.get(Job, job_id)
            return dict(job.params), job.owner, segments.result_keys(session, job_id), segments.summary(session, job_id)

        params, owner, keys, described = unit_of_work(state.sessions, read)
        started = time.monotonic()

        def merged(ctx: JobContext) -> Succeeded:
            with tempfile.TemporaryDirectory(prefix="ftcn-merge-") as folder:
                work = Path(folder)
                video = work / "input.mp4"
                fetch_input(ctx, video)
                setup = PredictSetup.of(ctx)
                parts = [json.loads(ctx.storage.get_bytes(key)) for key in keys]
                result = merged_document(video, parts, setup.network, setup.checkpoint, setup.backend, setup.options)
                result["segments"] = described
                return Succeeded(publish_result(ctx, setup, video, result, work))

        with Heartbeat(state.sessions, job_id, me, settings.heartbeat_s) as heart:
            ctx = _context(state, job_id, params, owner, heart)
            ending = outcome_of(lambda: merged(ctx), JobKind.PREDICT, state, f"merging job {job_id}")
        assert isinstance(ending, Ending)
        return close_job(state, job_id, JobKind.PREDICT, ending, started, f" merged from {len(keys)} segments")
