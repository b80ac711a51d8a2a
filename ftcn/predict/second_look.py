"""A second look before answering NO_FACE: another detector on frames spread over the whole video, within a
time budget.

The default (MTCNN) backend's scans stop at a floor of about 40 px and follow faces between keyframes; its second
look scans whole frames from 20 px (upscaling small ones), about 0.3 s for a 720p frame, so it looks at one frame a
second of video, from SAMPLE_FRAMES up to MAX_SAMPLE_FRAMES, spread from the first frame to the last. The dlib
backend's second look is dlib's CNN detector (2.4 s for a 640x360 frame on the 2-core development machine), which
the budget holds to a few frames. The NO_FACE answer then says how many frames across the video the second
detector saw no face in; a face it does see makes the video INCONCLUSIVE instead (``ftcn.predict.confidence``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftcn.video.decode import VideoLimits, iter_frames

#: Frames checked: one a second of video (at 25 fps), at least SAMPLE_FRAMES, at most MAX_SAMPLE_FRAMES; and the
#: time the check may take.
SAMPLE_FRAMES = 6
MAX_SAMPLE_FRAMES = 60
FRAMES_PER_SAMPLE = 25
BUDGET_S = 15.0
#: The second look has seen a face when it found one in at least SEEN_FRAMES of the frames it checked and at least
#: SEEN_SHARE of them. A face in a video is in most of it; a detector's false find on a texture flickers: on
#: face-free 720p scenes (the photo's suit and patches, panning) MTCNN from 20 px found skin-coloured "faces" in 2
#: of 10 and 0 of 10 sampled frames, on the carphone talking head at CRF 45 in 3 of 6.
SEEN_FRAMES = 2
SEEN_SHARE = 1 / 3


def _spread(first: int, last: int, count: int) -> set[int]:
    """``count`` frame numbers evenly spread from ``first`` to ``last`` (fewer when the range is shorter)."""
    if count < 1 or last < first:
        return set()
    return set(np.linspace(first, last, min(count, last - first + 1)).round().astype(int).tolist())


@dataclass(frozen=True)
class SecondLook:
    detector: str
    frames_checked: int
    frames_with_faces: int
    seconds: float
    smallest_face_px: float

    @property
    def saw_a_face(self) -> bool:
        return self.frames_with_faces >= max(SEEN_FRAMES, SEEN_SHARE * self.frames_checked)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 2), "smallest_face_px": round(self.smallest_face_px, 1),
                "saw_a_face": self.saw_a_face}


def second_look(path: str | Path, backend: Any, frames_read: int, limits: VideoLimits | None = None,
                sample: int | None = None, budget_s: float = BUDGET_S) -> SecondLook | None:
    """Run ``backend.count_faces_slowly`` on up to ``sample`` evenly spread frames (default: one a second, see
    above; None: the backend has no second detector)."""
    look = getattr(backend, "count_faces_slowly", None)
    if look is None or frames_read < 1:
        return None
    if sample is None:
        sample = min(MAX_SAMPLE_FRAMES, max(SAMPLE_FRAMES, frames_read // FRAMES_PER_SAMPLE))
    wanted = _spread(0, frames_read - 1, sample)
    started = time.perf_counter()
    checked = with_faces = 0
    slowest = 0.0
    smallest = float("inf")
    for frame in iter_frames(path, limits, max_frames=frames_read):
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
        # What the budget still affords, spread over the rest of the video (not spent on its beginning).
        left = {t for t in wanted if t > frame.index}
        affordable = int((budget_s - (time.perf_counter() - started)) / max(slowest, 1e-3))
        if len(left) > affordable:
            wanted = _spread(frame.index + 1, frames_read - 1, affordable) if affordable > 0 else set()
        if not wanted or frame.index >= max(wanted):
            break
    if not checked:  # the video decoded to fewer frames than the first pass read
        return None
    return SecondLook(detector=getattr(backend, "second_detector", "cnn"), frames_checked=checked,
                      frames_with_faces=with_faces, seconds=time.perf_counter() - started, smallest_face_px=smallest)
