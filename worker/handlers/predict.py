"""The predict job: fetch the video, reuse an earlier answer or split a long one, run ``ftcn.predict`` and store
the annotated video, face pictures, timeline and result document under the job.

Errors are not translated here: typed errors rise to the bookkeeping, which gives each its code in one table
(``worker.failures``); :class:`JobFailed` is raised only for a decision of this module's own. The model and face
backend come from the worker's state (loaded once per process).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ftcn.faces.names import DEFAULT_BACKEND
from jobs import reuse
from jobs.errors import ErrorCode
from jobs.keys import job_artifact_key, job_input_key
from jobs.params import PredictParams, read_params
from jobs.models import Job, Model
from worker.context import JobContext, Outcome, Split, Succeeded, fetch_input, video_limits
from worker.failures import JobFailed


@dataclass
class PredictSetup:
    """What every step of a predict job needs: the model (row and network), the face backend, the options."""

    model_name: str
    card: dict[str, Any] | None
    network: Any
    checkpoint: Any
    backend: Any
    options: Any  # ftcn.predict.pipeline.PredictOptions

    @classmethod
    def of(cls, ctx: JobContext) -> "PredictSetup":
        from ftcn.predict.pipeline import PredictOptions

        params = read_params(PredictParams, ctx.params)

        def model_row(session: Session) -> tuple[str, str, dict[str, Any] | None, str | None]:
            row = session.get(Model, params.model_id)
            if row is None:
                raise JobFailed(ErrorCode.UNKNOWN_MODEL, f"model {params.model_id} no longer exists")
            return row.storage_key, row.name, row.card, row.sha256

        storage_key, name, card, sha256 = ctx.db(model_row)
        chosen = params.options
        network, checkpoint = ctx.state.model(params.model_id, storage_key, sha256)
        backend = ctx.state.backend(chosen.backend or DEFAULT_BACKEND, chosen.detector_id)
        options = PredictOptions(stride=chosen.stride, max_frames=chosen.max_frames,
                                 limits=video_limits(ctx.settings), precision=ctx.settings.precision,
                                 runtime=ctx.settings.runtime, card=card)
        return cls(name, card, network, checkpoint, backend, options)


def predict(ctx: JobContext) -> Outcome:
    from ftcn.digests import file_sha256
    from ftcn.predict.pipeline import predict_video

    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        video = work / "input.mp4"
        fetch_input(ctx, video)
        digest = file_sha256(video)
        params = read_params(PredictParams, ctx.params)
        reused = ctx.db(lambda session: reuse.on_worker(session, ctx.job_id, params, digest, ctx.settings))
        if reused is not None:  # a finished job already answered this content with this model and options
            return Succeeded(reused)
        ctx.progress("faces", 1.0)
        setup = PredictSetup.of(ctx)
        if segments := _split_if_long(ctx, setup, video):
            return Split(segments)

        def report(stage: str, done: int, total: int | None) -> None:
            share = {"faces": (0, 85), "clips": (85, 90)}[stage]  # the stream classifies clips as it decodes
            fraction = done / total if total else 0.0
            ctx.progress(stage, share[0] + (share[1] - share[0]) * min(1.0, fraction))

        result = predict_video(video, setup.network, setup.checkpoint, setup.backend, setup.options,
                               progress=report)
        return Succeeded(publish_result(ctx, setup, video, result, work))


def _split_if_long(ctx: JobContext, setup: PredictSetup, video: Path) -> int:
    """A video longer than ``FTCN_SEGMENT_S`` goes on as segments on any free workers (``jobs.segments``): how many,
    once they are recorded and sent. 0: the video is short enough to run here."""
    from ftcn.faces.scan import scan_interval
    from ftcn.predict.segments import plan_segments
    from ftcn.video.decode import probe
    from jobs.queue import enqueue_segments
    from jobs.segments import split

    if ctx.settings.segment_s <= 0:
        return 0
    info = probe(video, setup.options.limits)
    if not info.duration_s or info.duration_s <= ctx.settings.segment_s or not info.frame_count:
        return 0
    frames = min(info.frame_count, setup.options.max_frames or info.frame_count)
    plans = plan_segments(frames, info.fps, ctx.settings.segment_s, setup.network.cfg.clip_len,
                          scan_interval(setup.backend, info, setup.options.detect_every))
    if len(plans) < 2:
        return 0
    if read_params(PredictParams, ctx.params).input_key is None:
        # fetched from a URL: every segment's worker reads the stored copy
        key = job_input_key(ctx.job_id, "video.mp4")
        ctx.storage.put_file(key, video, "video/mp4")
        ctx.db(lambda session: _store_input_key(session, ctx.job_id, key))
        ctx.params["input_key"] = key
    ids = ctx.db(lambda session: split(session, ctx.job_id, [plan.to_dict() for plan in plans]))
    enqueue_segments(ctx.state.celery, ids, ctx.settings)
    return len(plans)


def _store_input_key(session: Session, job_id: str, key: str) -> None:
    job = session.get(Job, job_id)
    job.params = {**job.params, "input_key": key}


def publish_result(ctx: JobContext, setup: PredictSetup, video: Path, result: dict[str, Any],
                   work: Path) -> dict[str, Any]:
    """Annotated video, face pictures, timeline and result.json stored under the job; the job's summary."""
    from ftcn.cards import card_line
    from ftcn.predict.summary import summary
    from ftcn.render.artifacts import content_type, write_artifacts
    from jobs.metrics import observe_stages  # not at import: the worker picks the metrics mode first (jobs.multiproc)

    params = read_params(PredictParams, ctx.params)
    result["input"]["filename"] = params.filename or params.video_url or "video"
    ctx.progress("annotate", 90.0)
    written = write_artifacts(video, result, work / "artifacts", setup.options.limits)
    observe_stages(result["timings_s"], encode_s=written.encode_s)
    artifacts = {}
    for name, tail in written.relative(work / "artifacts").items():
        artifacts[name] = job_artifact_key(ctx.job_id, tail)
        ctx.storage.put_file(artifacts[name], written.files[name], content_type(written.files[name]))
    return {**summary(result),
            "model_id": params.model_id, "model_name": setup.model_name, "model_card": result["model"]["card"],
            "model_card_line": card_line(setup.model_name, result["model"]["card"]),
            **({"segments": len(result["segments"])} if result.get("segments") else {}),
            "artifacts": artifacts}
