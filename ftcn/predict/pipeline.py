"""From a video file to a prediction result: faces, tracks, clips, model, scores.

The CLI, the worker and the benchmarks all call :func:`predict_video`; it takes a loaded model and backend (load
once per process) and reports progress through a callback, so it knows nothing of terminals or job queues.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ftcn.cards import card_from_checkpoint
from ftcn.checkpoints import Checkpoint
from ftcn.faces.backends import FaceBackend
from ftcn.models import FTCN
from ftcn.predict.adaptive import look_again
from ftcn.predict.classify import clip_probabilities
from ftcn.predict.confidence import assess_tracks, video_verdict
from ftcn.predict.options import PredictOptions, Progress, TrackerMode
from ftcn.predict.passes import streamed, two_passes
from ftcn.predict.result import (
    RESULT_SCHEMA_VERSION,
    UNJUDGED,
    coverage,
    no_face_reason,
    track_results,
    verdict_for,
    video_score,
)
from ftcn.predict.scoring import mean_score
from ftcn.predict.second_look import second_look
from ftcn.predict.stream import StreamResult
from ftcn.precision_check import engine_for_model
from ftcn.runtime import Engine
from ftcn.timing import StageTimer


def predict_video(
    path: str | Path,
    model: FTCN,
    checkpoint: Checkpoint,
    backend: FaceBackend,
    options: PredictOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Analyse one video and return the result document (see ``result.schema.json``)."""
    options = (options or PredictOptions()).resolved(model, backend)
    path = Path(path)
    report = progress or (lambda stage, done, total: None)
    timer = StageTimer()
    with timer.measure("engine"):  # an ONNX export the first time a model is seen on this machine
        engine = engine_for_model(model, checkpoint, options.runtime, options.precision)
    options = replace(options, runtime=engine.runtime, precision=engine.precision)
    backend.timer.reset()
    with timer.measure("total"):
        if options.streaming and options.tracker is TrackerMode.FOLLOW_ALL:
            found = streamed(path, model, backend, engine, options, report, timer)
        else:
            found = two_passes(path, model, backend, engine, options, report, timer)
        found, again = looked_again(path, found, model, engine, checkpoint, options, timer)
    timer.merge(backend.timer)
    return result_document(path.name, path, found, model.cfg, checkpoint, backend, options, timer, again)


def looked_again(path: Path, found: StreamResult, model: FTCN, engine: Engine, checkpoint: Checkpoint,
                 options: PredictOptions, timer: StageTimer) -> tuple[StreamResult, list[int]]:
    """The adaptive pass's second look (``ftcn.predict.adaptive``) when ``options`` (resolved) ask for it."""
    if not options.adaptive or not options.stride or options.stride < 2:
        return found, []
    return look_again(path, found, lambda clips: clip_probabilities(model, engine, clips),
                      threshold=checkpoint.threshold, band=checkpoint.band, step=max(1, options.stride // 2),
                      size=model.cfg.image_size, batch_size=options.batch_size, limits=options.limits, timer=timer)


def result_document(name: str, path: Path, found: StreamResult, cfg: Any, checkpoint: Checkpoint,
                    backend: FaceBackend, options: PredictOptions, timer: StageTimer,
                    looked_again: list[int] | None = None) -> dict[str, Any]:
    """The result document (``result.schema.json``) of what was found in a video, from one run or from the
    merged segments of one (``ftcn.predict.segments``). ``path``: the video, for the second look before NO_FACE;
    ``looked_again``: the tracks the adaptive pass gave denser clips."""
    options = replace(options, detect_every=found.detect_every)
    tracks, windows, probabilities = found.tracks, found.windows, found.probabilities
    tracks_out = track_results(tracks, windows, probabilities, checkpoint.threshold, found.unjudged)
    if options.adaptive:
        for index, entry in enumerate(tracks_out):
            if entry["verdict"] != UNJUDGED:
                entry["looked_again"] = index in (looked_again or [])
    assess_tracks(tracks_out, windows, found.brightness, found.info.fps, checkpoint.threshold, checkpoint.band,
                  options.quality)
    score = video_score(tracks_out)
    second = None
    if score is None and options.second_look:
        with timer.measure("second_look"):
            looked = second_look(path, backend, found.frames_read, options.limits)
        second = looked.describe() if looked else None
    info = found.info
    verdict, reasons = video_verdict(tracks_out, verdict_for(score, checkpoint.threshold).value, second)
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "input": {
            "filename": name,
            "width": info.width,
            "height": info.height,
            "fps": round(info.fps, 4),
            "duration_s": info.duration_s,
            "frames_read": found.frames_read,
            "rotation": info.rotation,
            "codec": info.codec,
        },
        "model": {
            "name": cfg.name,
            "config": cfg.to_dict(),
            "threshold": checkpoint.threshold,
            "source_format": checkpoint.source_format,
            "metadata": checkpoint.metadata,
            "card": options.card or card_from_checkpoint(checkpoint),
        },
        "options": {**options.describe(), "backend": backend.name},
        "faces": {"backend": backend.name, "weights": getattr(backend, "weights", None),
                  "detect_every": found.detect_every, "smallest_face_px": _rounded_px(found.smallest_face_px),
                  "second_look": second},
        "coverage": coverage(tracks_out, found.frames_read),
        "no_face_reason": no_face_reason(tracks_out, found.frames_read, found.smallest_face_px, second),
        "verdict": verdict,
        "inconclusive_reasons": reasons,
        "score": score,
        "mean_clip_score": mean_score(list(probabilities)) if len(windows) else None,
        "threshold": checkpoint.threshold,
        "band": list(checkpoint.band) if checkpoint.band else None,
        "timings_s": timer.rounded(),
        "tracks": tracks_out,
    }


def _rounded_px(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


__all__ = ["PredictOptions", "TrackerMode", "predict_video"]
