"""Second pass over a video: cut and align clips, holding only the crop regions still needed.

Clips are planned from coordinates alone (:func:`plan_clips`); the video is then decoded once more, and each frame
contributes the crop regions of the tracks that pending clips still need. A clip is aligned and queued as soon as
its last frame has been decoded, and a region is dropped when no pending clip needs it, so memory stays bounded by
the clip length, not by the video length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftcn.errors import InvalidVideo
from ftcn.faces.align import clip_affine, crop_region, warp_clip
from ftcn.faces.clips import ClipWindow, clip_windows, crop_boxes
from ftcn.faces.types import Track
from ftcn.timing import StageTimer
from ftcn.video.decode import VideoLimits, iter_frames


@dataclass(frozen=True)
class ClipPlan:
    """A clip window with its frame-to-aligned matrix (one per clip, fitted on all its frames)."""

    window: ClipWindow
    affine: np.ndarray

    @property
    def ready_at(self) -> int:
        return int(self.window.frames.max())


def plan_clips(
    tracks: list[Track], frame_size: tuple[int, int], clip_len: int, stride: int, size: int
) -> tuple[list[ClipPlan], list[np.ndarray]]:
    """Clip plans of every track, and each track's crop boxes (index by position in the track)."""
    plans: list[ClipPlan] = []
    all_crops = [crop_boxes(track.boxes, frame_size) for track in tracks]
    for index, (track, crops) in enumerate(zip(tracks, all_crops)):
        for window in clip_windows(track, index, clip_len, stride):
            affine, _ = clip_affine(track.points5[window.positions], crops[window.positions], size)
            plans.append(ClipPlan(window, affine))
    return plans, all_crops


def iter_aligned_clips(
    path: str | Path,
    plans: list[ClipPlan],
    crops: list[np.ndarray],
    tracks: list[Track],
    size: int,
    limits: VideoLimits | None = None,
    on_frame: Callable[[int], None] | None = None,
    timer: StageTimer | None = None,
    start_frame: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (plan index, aligned clip uint8 [T, size, size, 3]) in order of the clips' last frames; frames before
    ``start_frame`` (where no plan starts) are decoded but not converted."""
    if not plans:
        return
    last_frame = max(plan.ready_at for plan in plans)
    uses: Counter[tuple[int, int]] = Counter()
    for plan in plans:
        uses.update((plan.window.track, int(f)) for f in plan.window.frames)
    order = sorted(range(len(plans)), key=lambda i: plans[i].ready_at)
    cursor = 0
    regions: dict[tuple[int, int], np.ndarray] = {}
    timer = timer or StageTimer()
    frames = iter_frames(path, limits, max_frames=last_frame + 1, start_frame=start_frame)
    while True:
        with timer.measure("decode"):
            frame = next(frames, None)
        if frame is None:
            break
        t = frame.index
        for track_index, track in enumerate(tracks):
            if (track_index, t) in uses:
                regions[(track_index, t)] = crop_region(frame.rgb, crops[track_index][t - track.start])
        while cursor < len(order) and plans[order[cursor]].ready_at <= t:
            plan = plans[order[cursor]]
            track_index = plan.window.track
            crop_of = crops[track_index]
            with timer.measure("align"):
                clip = warp_clip([regions[(track_index, int(f))] for f in plan.window.frames],
                                 crop_of[plan.window.positions], plan.affine, size)
            yield order[cursor], clip
            for f in plan.window.frames:
                key = (track_index, int(f))
                uses[key] -= 1
                if uses[key] == 0:
                    del uses[key]
                    regions.pop(key, None)
            cursor += 1
        if on_frame:
            on_frame(t)
    if cursor < len(order):
        raise InvalidVideo(f"the video ended before clip {order[cursor]} was complete: it decodes to fewer frames on a "
                           "second read")
