"""From a video file to a prediction result: faces, tracks, clips, model, scores.

The CLI, the worker and the benchmarks all call :func:`predict_video`; it takes a loaded model and backend (load
once per process) and reports progress through a callback, so it knows nothing of terminals or job queues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ftcn.cards import card_from_checkpoint
from ftcn.checkpoints import Checkpoint
from ftcn.errors import BadOption
from ftcn.faces.backends import FaceBackend
from ftcn.faces.tracking import TrackerConfig, link_faces, link_official
from ftcn.models import FTCN
from ftcn.precision import Precision
from ftcn.predict.clip_pass import classify_clips, clip_probabilities, iter_aligned_clips, plan_clips
from ftcn.predict.confidence import QualityRules, assess_tracks, video_verdict
from ftcn.predict.faces_pass import scan_faces
from ftcn.predict.judging import JudgingRules, unjudged_reasons
from ftcn.predict.adaptive import look_again
from ftcn.predict.result import RESULT_SCHEMA_VERSION, UNJUDGED, coverage, no_face_reason, track_results, verdict_for, video_score
from ftcn.predict.scoring import mean_score
from ftcn.predict.second_look import second_look
from ftcn.predict.stream import StreamResult, mean_brightness, stream_video
from ftcn.runtime import Engine, Runtime, engine_for, threads_beside
from ftcn.timing import StageTimer
from ftcn.video.decode import VideoLimits

#: Clips at least this big (frames x pixels; the official 32 x 224 x 224 is) run at batch 1 on a CPU.
LARGE_CLIP_VOLUME = 32 * 224 * 224

#: progress(stage, done, total) with stage one of "faces", "clips".
Progress = Callable[[str, int, int | None], None]


class TrackerMode(str, Enum):
    FOLLOW_ALL = "follow_all"
    OFFICIAL = "official"


@dataclass(frozen=True)
class PredictOptions:
    """How a video is analysed. ``stride=1, detect_every=1, tracker=official`` is the official behaviour.

    Defaults (None) are the fast mode measured by bench/bench_predict.py and guarded by bench/bench_one_pass.py:
    the adaptive pass (``ftcn.predict.adaptive``: one clip per frame, the half-clip stride's other clips only for
    tracks whose verdict is in doubt), faces scanned where following needs it (``ftcn.predict.faces_pass``), and
    a batch size that suits the device (on CPU the full-size model runs fastest per clip at batch 1: 0.29 clips/s
    against 0.20 at batch 4, bench/bench_model.py; smaller models prefer 4). A ``stride`` given is a fixed stride
    (1: the official clip at every frame), unless ``adaptive`` is set too.
    """

    stride: int | None = None
    #: None: adaptive when no stride is given; True: ``stride`` (default: a clip length) is the first pass and
    #: borderline tracks get the clips half of it off; False: every track at ``stride`` (default: half a clip).
    adaptive: bool | None = None
    batch_size: int | None = None
    detect_every: int | None = None
    tracker: TrackerMode = TrackerMode.FOLLOW_ALL
    tracker_config: TrackerConfig | None = None  # None: the backend's, measured for its scores
    max_frames: int | None = None
    limits: VideoLimits = field(default_factory=VideoLimits)
    judging: JudgingRules = field(default_factory=JudgingRules)
    #: When a judged face is seen too badly for its verdict to count (ftcn.predict.confidence).
    quality: QualityRules = field(default_factory=QualityRules)
    #: Before answering NO_FACE, a second detector looks at a few frames (ftcn.predict.second_look).
    second_look: bool = True
    #: auto, fp32 or bf16 (ftcn.precision), and where the model runs: auto, torch or onnxruntime (ftcn.runtime).
    precision: str = Precision.AUTO.value
    runtime: str = Runtime.AUTO.value
    #: The model card shown with the verdict (ftcn.cards): a registered model's; None derives it from the checkpoint.
    card: dict[str, Any] | None = None
    #: One decode with the model classifying while faces are found (ftcn.predict.stream); False decodes twice,
    #: faces first. The official tracker always takes two passes (it links with the whole video in view).
    streaming: bool = True

    def __post_init__(self) -> None:
        for name in ("stride", "batch_size", "detect_every", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadOption(f"{name} must be at least 1, got {value}")

    def resolved(self, model: FTCN, backend: FaceBackend) -> "PredictOptions":
        """The options with defaults filled in for this model, its device and the backend."""
        on_cpu = next(model.parameters()).device.type == "cpu"
        large = model.cfg.clip_len * model.cfg.image_size**2 >= LARGE_CLIP_VOLUME
        adaptive = self.stride is None if self.adaptive is None else self.adaptive
        return replace(
            self,
            adaptive=adaptive,
            stride=self.stride or (model.cfg.clip_len if adaptive else max(1, model.cfg.clip_len // 2)),
            batch_size=self.batch_size or (1 if on_cpu and large else 4 if on_cpu else 8),
            tracker_config=self.tracker_config or backend.tracker_config,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "adaptive": self.adaptive,
            "batch_size": self.batch_size,
            "detect_every": self.detect_every,
            "tracker": self.tracker.value,
            "max_frames": self.max_frames,
            "precision": self.precision,
            "runtime": self.runtime,
            "streaming": self.streaming and self.tracker is TrackerMode.FOLLOW_ALL,
        }


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
        engine = engine_for(model, options.runtime, options.precision)
    options = replace(options, runtime=engine.runtime, precision=engine.precision)
    backend.timer.reset()
    with timer.measure("total"):
        if options.streaming and options.tracker is TrackerMode.FOLLOW_ALL:
            found = _stream(path, model, backend, engine, options, report, timer)
        else:
            found = _two_passes(path, model, backend, engine, options, report, timer)
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


def _stream(path: Path, model: FTCN, backend: FaceBackend, engine: Engine, options: PredictOptions,
            report: Progress, timer: StageTimer, start_frame: int = 0) -> StreamResult:
    """The default: one decode, the model classifying while faces are found (ftcn.predict.stream). Progress is
    the share of frames decoded; the clips are done a moment after the last frame."""
    cfg = model.cfg
    found = stream_video(
        path, backend, lambda clips, beside: clip_probabilities(model, engine, clips,
                                                         threads_beside() if beside else None),
        clip_len=cfg.clip_len,
        stride=options.stride, size=cfg.image_size, batch_size=options.batch_size, tracker=options.tracker_config,
        judging=options.judging, detect_every=options.detect_every, limits=options.limits,
        max_frames=options.max_frames, timer=timer, on_frames=lambda done, total: report("faces", done, total),
        start_frame=start_frame,
    )
    report("clips", len(found.windows), len(found.windows))
    return found


def _two_passes(path: Path, model: FTCN, backend: FaceBackend, engine: Engine, options: PredictOptions,
                report: Progress, timer: StageTimer) -> StreamResult:
    """Faces over the whole video first, then a second decode for the clips: what the official tracker needs (it
    links with the whole video in view), and the reference the stream is tested against."""
    scan = scan_faces(
        path, backend, detect_every=options.detect_every, limits=options.limits, max_frames=options.max_frames,
        on_frame=lambda done, total: report("faces", done, total), timer=timer,
    )
    cfg = model.cfg
    frame_size = (scan.info.width, scan.info.height)
    with timer.measure("track"):
        if options.tracker is TrackerMode.OFFICIAL:
            _, tracks = link_official(scan.faces)
            unjudged: list[str | None] = [None] * len(tracks)  # the official padding, for parity
        else:
            tracks = link_faces(scan.faces, options.tracker_config)
            unjudged = unjudged_reasons(tracks, frame_size, cfg.clip_len, options.judging)
        judged = [track for track, reason in zip(tracks, unjudged) if reason is None]
        plans, crops = plan_clips(judged, frame_size, cfg.clip_len, options.stride, cfg.image_size)
    aligned = iter_aligned_clips(path, plans, crops, judged, cfg.image_size, options.limits, timer=timer)
    brightness = np.zeros(len(plans))

    def lit(items):  # each clip's brightness, noted on its way to the model
        for index, clip in items:
            brightness[index] = mean_brightness(clip)
            yield index, clip

    clips = lit(aligned)
    done = 0

    def on_batch(count: int) -> None:
        nonlocal done
        done += count
        report("clips", done, len(plans))

    probabilities = (
        classify_clips(model, clips, options.batch_size, len(plans), on_batch, timer=timer, engine=engine)
        if plans else np.zeros(0)
    )
    return StreamResult(info=scan.info, frames_read=scan.frames_read, detect_every=scan.detect_every,
                        smallest_face_px=scan.smallest_face_px, tracks=tracks, unjudged=unjudged,
                        windows=[plan.window for plan in plans], probabilities=probabilities,
                        brightness=brightness)


def _rounded_px(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


__all__ = ["PredictOptions", "TrackerMode", "predict_video"]
