"""First pass over a video: decode, find faces, keep only their coordinates (never the pixels).

Keeping coordinates only is what lets the whole pipeline run in memory independent of the video's length; the
pixels are decoded again, one window at a time, by :mod:`ftcn.faces.clip_plan`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    """Decode every frame and find its faces: full scans on every ``detect_every``-th frame when it is given, else
    where following needs them (:func:`scan_schedule`); in between, the backend follows the faces it has
    (``refit``). A backend that follows faces also keeps, on scan frames, the followed faces the scan missed."""
    info = probe(path, limits)
    schedule = scan_schedule(backend, info, detect_every)
    detect_every = schedule.every
    total = frames_expected(info, max_frames)
    faces: list[FrameFaces] = []
    for frame, found in iter_frame_faces(path, backend, schedule, limits, max_frames, timer):
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


def scan_schedule(backend: FaceBackend, info: VideoInfo, detect_every: int | None) -> "ScanSchedule":
    """Where full scans happen: every ``detect_every``-th frame when it is given (or the backend follows nothing),
    else where following needs them (:class:`ScanSchedule`)."""
    fixed = detect_every is not None or not backend.follows_faces
    return ScanSchedule.for_video(scan_interval(backend, info, detect_every), info.fps, fixed)


def frames_expected(info: VideoInfo, max_frames: int | None) -> int | None:
    return info.frame_count if max_frames is None else min(info.frame_count or max_frames, max_frames)


def iter_frame_faces(
    path: str | Path,
    backend: FaceBackend,
    schedule: "ScanSchedule",
    limits: VideoLimits | None = None,
    max_frames: int | None = None,
    timer: StageTimer | None = None,
    start_frame: int = 0,
) -> Iterator[tuple[Frame, FrameFaces]]:
    """Each decoded frame with its faces, in order: full scans where ``schedule`` says, the faces followed in
    between (see :func:`scan_faces`), from ``start_frame`` on (the first frame then starts with nothing followed,
    as a video's first frame does)."""
    timer = timer or StageTimer()
    previous: list[Face] = []
    # A backend that detects on every frame and follows nothing takes frames in batches (RetinaFace on a GPU).
    every_frame = schedule.fixed and schedule.every == 1 and not backend.follows_faces
    batch = max(1, getattr(backend, "batch_size", 1)) if every_frame else 1
    frames = iter_frames(path, limits, max_frames=max_frames, start_frame=start_frame)
    while True:
        with timer.measure("decode"):
            group = list(itertools.islice(frames, batch))
        if not group:
            break
        if batch > 1:
            found_in_group = backend.detect_many([frame.rgb for frame in group])
        else:
            found_in_group = [_faces_of(group[0], backend, schedule.scan(group[0], previous), previous)]
        for frame, found in zip(group, found_in_group):
            previous = found
            yield frame, found


#: While every face is followed, full scans only look for faces that enter the picture: a coarse one (faces the
#: detector finds without upscaling, a quarter of the cost) every KEYFRAME_S seconds and a full one every
#: FULL_KEYFRAME_S seconds (bench/bench_faces.py measures what this costs and finds).
KEYFRAME_S = 1.0
FULL_KEYFRAME_S = 4.0
#: Mean absolute difference (0-255) between consecutive frames' coarse green channels above which a frame starts
#: a new shot, where faces are looked for at once.
SCENE_CUT = 35.0


@dataclass
class ScanSchedule:
    """Which frames get a full face scan.

    Fixed (an explicit interval, or a backend that does not follow faces): every ``every``-th frame of the video.
    Otherwise a scan is made where tracking needs one: the first frame; a new shot (:data:`SCENE_CUT`); every
    ``every``-th frame while no face is followed or a followed face is not confirmed (the backend's pixel budget
    for looking); and, while every face is followed and confirmed, keyframes for faces that enter (coarse every
    ``keyframe`` frames, full every ``full_keyframe``). Keyframes and intervals count from the video's first
    frame, so a segment of a video scans the frames one run would (``ftcn.predict.segments``).
    """

    every: int
    keyframe: int
    full_keyframe: int
    fixed: bool
    _started: bool = False
    _thumb: np.ndarray | None = None

    @classmethod
    def for_video(cls, every: int, fps: float, fixed: bool) -> "ScanSchedule":
        rate = fps if fps and fps > 0 else 25.0
        return cls(every=every, keyframe=max(every, round(KEYFRAME_S * rate)),
                   full_keyframe=max(every, round(FULL_KEYFRAME_S * rate)), fixed=fixed)

    def scan(self, frame: Frame, previous: list[Face]) -> str | None:
        """``"full"``, ``"coarse"`` or None (follow the faces of the previous frame)."""
        t = frame.index
        if self.fixed:
            return "full" if t % self.every == 0 else None
        thumb = frame.rgb[::8, ::8, 1].astype(np.int16)
        cut = self._thumb is not None and self._thumb.shape == thumb.shape and float(
            np.abs(thumb - self._thumb).mean()) > SCENE_CUT
        self._thumb = thumb
        if not self._started or cut:
            self._started = True
            return "full"
        if not previous or any(face.carried for face in previous):
            return "full" if t % self.every == 0 else None
        if t % self.full_keyframe == 0:
            return "full"
        return "coarse" if t % self.keyframe == 0 else None


def _faces_of(frame: Frame, backend: FaceBackend, scan: str | None, previous: list[Face]) -> list[Face]:
    """One frame's faces: a scan (full or coarse), with the followed faces it missed; the followed faces otherwise."""
    if scan is not None:
        found = backend.detect(frame.rgb, coarse=scan == "coarse")
        if backend.follows_faces and previous:
            missed = [face for face in previous if all(iou(face.box, new.box) < MISSED_IOU for new in found)]
            found = found + backend.refit(frame.rgb, missed)
        return found
    return backend.refit(frame.rgb, previous) if previous else []
