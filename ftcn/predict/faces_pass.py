"""First pass over a video: decode, find faces, keep only their coordinates (never the pixels).

Keeping coordinates only is what lets the whole pipeline run in memory independent of the video's length; the
pixels are decoded again, one window at a time, by :mod:`ftcn.predict.clip_pass`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ftcn.errors import BadOption
from ftcn.faces.backends import FaceBackend
from ftcn.faces.tracking import iou
from ftcn.faces.types import Face, FrameFaces
from ftcn.timing import StageTimer
from ftcn.video.decode import Frame, VideoInfo, VideoLimits, iter_frames, probe

#: A followed face overlapping a fresh detection less than this is one the detection missed.
MISSED_IOU = 0.3


@dataclass
class FaceScan:
    info: VideoInfo
    faces: list[FrameFaces]
    detect_every: int = 1  # frames between full detections
    smallest_face_px: float | None = None  # the smallest face a full detection finds at this frame size

    @property
    def frames_read(self) -> int:
        return len(self.faces)


def scan_faces(
    path: str | Path,
    backend: FaceBackend,
    *,
    detect_every: int | None = None,
    limits: VideoLimits | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    timer: StageTimer | None = None,
) -> FaceScan:
    """Decode every frame and detect faces on every ``detect_every``-th one (default: the backend's interval for
    this frame size); in between, the backend follows the faces it has (``refit``). A backend that follows faces
    also keeps, on detection frames, the followed faces the detection missed."""
    info = probe(path, limits)
    detect_every = scan_interval(backend, info, detect_every)
    total = frames_expected(info, max_frames)
    faces: list[FrameFaces] = []
    for frame, found in iter_frame_faces(path, backend, detect_every, limits, max_frames, timer):
        faces.append(found)
        if on_frame:
            on_frame(frame.index + 1, total)
    return FaceScan(info=info, faces=faces, detect_every=detect_every,
                    smallest_face_px=backend.smallest_face_px(info.width, info.height))


def scan_interval(backend: FaceBackend, info: VideoInfo, detect_every: int | None) -> int:
    """Frames between full detections: the given interval, or the backend's for this frame size."""
    detect_every = detect_every or backend.detect_interval(info.width, info.height)
    if detect_every < 1:
        raise BadOption(f"detect_every must be >= 1, got {detect_every}")
    return detect_every


def frames_expected(info: VideoInfo, max_frames: int | None) -> int | None:
    return info.frame_count if max_frames is None else min(info.frame_count or max_frames, max_frames)


def iter_frame_faces(
    path: str | Path,
    backend: FaceBackend,
    detect_every: int,
    limits: VideoLimits | None = None,
    max_frames: int | None = None,
    timer: StageTimer | None = None,
    start_frame: int = 0,
) -> Iterator[tuple[Frame, FrameFaces]]:
    """Each decoded frame with its faces, in order (see :func:`scan_faces` for how faces are found), from
    ``start_frame`` on (the first frame then starts with nothing followed, as a video's first frame does)."""
    timer = timer or StageTimer()
    previous: list[Face] = []
    # A backend that detects on every frame and follows nothing takes frames in batches (RetinaFace on a GPU).
    batch = max(1, getattr(backend, "batch_size", 1)) if detect_every == 1 and not backend.follows_faces else 1
    frames = iter_frames(path, limits, max_frames=max_frames, start_frame=start_frame)
    while True:
        with timer.measure("decode"):
            group = list(itertools.islice(frames, batch))
        if not group:
            break
        if batch > 1:
            found_in_group = backend.detect_many([frame.rgb for frame in group])
        else:
            found_in_group = [_faces_of(group[0], backend, detect_every, previous)]
        for frame, found in zip(group, found_in_group):
            previous = found
            yield frame, found


def _faces_of(frame: Frame, backend: FaceBackend, detect_every: int, previous: list[Face]) -> list[Face]:
    """One frame's faces: a full detection on every ``detect_every``-th frame, the followed faces otherwise."""
    if frame.index % detect_every == 0:
        found = backend.detect(frame.rgb)
        if backend.follows_faces and previous:
            missed = [face for face in previous if all(iou(face.box, new.box) < MISSED_IOU for new in found)]
            found = found + backend.refit(frame.rgb, missed)
        return found
    return backend.refit(frame.rgb, previous) if previous else []
