"""The two ways through a video to its tracks and clip probabilities: one decode with the model classifying while
faces are found (the default), or faces over the whole video first and a second decode for the clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftcn.faces.backends import FaceBackend
from ftcn.faces.clip_plan import iter_aligned_clips, plan_clips
from ftcn.faces.scan import scan_faces
from ftcn.faces.tracking import link_faces, link_official
from ftcn.models import FTCN
from ftcn.predict.classify import classify_clips, clip_probabilities
from ftcn.predict.judging import unjudged_reasons
from ftcn.predict.options import PredictOptions, Progress, TrackerMode
from ftcn.predict.stream import StreamResult, mean_brightness, stream_video
from ftcn.runtime import Engine, threads_beside
from ftcn.timing import StageTimer


def streamed(path: Path, model: FTCN, backend: FaceBackend, engine: Engine, options: PredictOptions,
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


def two_passes(path: Path, model: FTCN, backend: FaceBackend, engine: Engine, options: PredictOptions,
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
