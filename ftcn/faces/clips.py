"""Crop boxes and clip windows over a track, as the official FTCN video script makes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftcn.faces import official
from ftcn.faces.types import Track


@dataclass(frozen=True)
class ClipWindow:
    """One clip: ``positions`` index into the track, ``frames`` are the video frame numbers (may repeat).
    ``start``: where the clip starts in the track's clip sequence (padded, for a track shorter than a clip; see
    :func:`padded_positions`); None where it is not known (a clip rebuilt from frame numbers)."""

    track: int
    positions: np.ndarray
    frames: np.ndarray
    start: int | None = None


def crop_boxes(boxes: np.ndarray, frame_size: tuple[int, int], grow: float = official.CROP_GROW) -> np.ndarray:
    """Integer crop boxes [N, 4]: round (half to even), grow by ``grow`` x size each side, clip, round again.

    ``frame_size`` is (width, height); x is clipped to [0, width - 1] and y to [0, height - 1] (official quirk:
    slicing is end-exclusive, so the last row and column are never inside a crop).
    """
    width, height = frame_size
    rounded = np.round(np.asarray(boxes, dtype=np.float64))
    sizes = rounded[:, 2:] - rounded[:, :2]
    grown = np.concatenate([rounded[:, :2] - sizes * grow, rounded[:, 2:] + sizes * grow], axis=1)
    grown[:, [0, 2]] = np.clip(grown[:, [0, 2]], 0, width - 1)
    grown[:, [1, 3]] = np.clip(grown[:, [1, 3]], 0, height - 1)
    return np.round(grown).astype(np.int64)


def _mirror(length: int) -> list[int]:
    """Positions of a track followed by its mirror without end points: 0..n-1, n-2..1."""
    forward = list(range(length))
    return forward + forward[-2:0:-1]


def padded_positions(length: int, clip_len: int = official.CLIP_LEN) -> list[int]:
    """Track positions after the official padding of tracks shorter than a clip.

    After the track: its mirror without end points, then the track, repeated, first ``clip_len - 1`` kept. Before:
    the track and its mirror, repeated twice, last ``clip_len - 1`` kept. The official code builds that sequence
    once, which is too short for very short tracks (and crashes on a one-frame track); we repeat the pattern as
    often as needed, which gives the same positions wherever the official code works.
    """
    if length < 1:
        raise ValueError("cannot pad an empty track")
    if length >= clip_len:
        return list(range(length))
    need = clip_len - 1
    cycle = _mirror(length) if length > 1 else [0]
    after_cycle = (cycle[length:] + list(range(length))) if length > 1 else [0]
    repeats = need // len(after_cycle) + 2
    after = (after_cycle * repeats)[:need]
    before_repeats = max(2, need // len(cycle) + 2)
    before = (cycle * before_repeats)[-need:]
    return before + list(range(length)) + after


def clip_windows(
    track: Track, track_index: int, clip_len: int = official.CLIP_LEN, stride: int = 1
) -> list[ClipWindow]:
    """Windows of ``clip_len`` positions every ``stride`` positions; the last window always ends at the end.

    With stride 1 this is the official "a window at every start position". A larger stride is our speed option;
    the final window is kept so that every frame of the track stays covered.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    positions = np.asarray(padded_positions(len(track), clip_len))
    last_start = len(positions) - clip_len
    starts = list(range(0, last_start + 1, stride))
    if starts[-1] != last_start:
        starts.append(last_start)
    return [
        ClipWindow(track_index, positions[s : s + clip_len], track.start + positions[s : s + clip_len], s)
        for s in starts
    ]
