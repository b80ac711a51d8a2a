"""What decoding takes and gives: its bounds, the video's facts and one frame. A module of its own so that the
decoder and its cage (which rebuilds these from the child's records) both import it, and not each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VideoLimits:
    """Bounds checked before and while decoding (a service must not be stalled by one huge upload)."""

    max_duration_s: float = 600.0
    max_frames: int = 36_000
    max_pixels: int = 3840 * 2160
    max_fps: float = 240.0
    max_streams: int = 8  # all kinds: a file with dozens of streams is a bomb, not a recording
    #: ``ftcn.video.cage.Cage``: decode in a locked-in child process (the service does; None: in this process).
    cage: Any = None


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the video, with width/height as displayed (after rotation)."""

    width: int
    height: int
    fps: float
    duration_s: float | None
    frame_count: int | None
    codec: str
    rotation: int


@dataclass(frozen=True)
class Frame:
    index: int
    time_s: float
    rgb: np.ndarray  # [H, W, 3] uint8, as displayed
    #: Pixels of ``rgb`` per pixel of the video (frames decoded smaller for a smaller output are < 1).
    scale: float = 1.0
