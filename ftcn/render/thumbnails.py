"""One small face crop per track (the middle of the track), for people who look rather than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ftcn.video.decode import VideoLimits, iter_frames

THUMB_SIZE = 112
MAX_THUMBS = 32


def face_crop(rgb: np.ndarray, box: list[float], size: int = THUMB_SIZE, margin: float = 0.25) -> np.ndarray:
    """A square crop around ``box`` (x0, y0, x1, y1) with a margin, clipped to the frame, resized to ``size``."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    height, width = rgb.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    crop = rgb[top:max(bottom, top + 1), left:max(right, left + 1)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def write_face_thumbnails(video_path: str | Path, result: dict[str, Any], out_dir: str | Path,
                          limits: VideoLimits | None = None) -> dict[int, Path]:
    """``out_dir/<track id>.jpg`` for up to MAX_THUMBS tracks, decoding the video once up to the last frame needed."""
    wanted: dict[int, list[tuple[int, list[float]]]] = {}
    for track in result["tracks"][:MAX_THUMBS]:
        middle = len(track["frames"]) // 2
        wanted.setdefault(track["frames"][middle], []).append((track["id"], track["boxes"][middle]))
    written: dict[int, Path] = {}
    if not wanted:
        return written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = max(wanted)
    for frame in iter_frames(video_path, limits, max_frames=last + 1):
        for track_id, box in wanted.get(frame.index, []):
            path = out_dir / f"{track_id}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(face_crop(frame.rgb, box), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 88])
            written[track_id] = path
    return written
