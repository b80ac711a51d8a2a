"""First pass over a video: decode, find faces, keep only their coordinates (never the pixels).

Keeping coordinates only is what lets the whole pipeline run in memory independent of the video's length; the
pixels are decoded again, one window at a time, by :mod:`ftcn.predict.clip_pass`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftcn.faces.backends import FaceBackend
from ftcn.faces.types import Face, FrameFaces
from ftcn.timing import StageTimer
from ftcn.video.decode import VideoInfo, VideoLimits, iter_frames, probe


@dataclass
class FaceScan:
    info: VideoInfo
    faces: list[FrameFaces]

    @property
    def frames_read(self) -> int:
        return len(self.faces)


def scan_faces(
    path: str | Path,
    backend: FaceBackend,
    *,
    detect_every: int = 1,
    limits: VideoLimits | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    timer: StageTimer | None = None,
) -> FaceScan:
    """Decode every frame and detect faces on every ``detect_every``-th one (boxes carried in between)."""
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    info = probe(path, limits)
    total = info.frame_count if max_frames is None else min(info.frame_count or max_frames, max_frames)
    timer = timer or StageTimer()
    faces: list[FrameFaces] = []
    previous: list[Face] = []
    frames = iter_frames(path, limits, max_frames=max_frames)
    while True:
        with timer.measure("decode"):
            frame = next(frames, None)
        if frame is None:
            break
        if frame.index % detect_every == 0 or not previous:
            found = backend.detect(frame.rgb)
        else:
            found = backend.refit(frame.rgb, previous)
        previous = found
        faces.append(found)
        if on_frame:
            on_frame(frame.index + 1, total)
    return FaceScan(info=info, faces=faces)
