"""One small face crop per track (the middle of the track), for people who look rather than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ftcn.video.decode import Frame, VideoLimits, iter_frames

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


class FaceThumbnails:
    """Collects one crop per track from frames shown to it (``see``), so that a pass that decodes the video anyway
    (the annotated video) also yields the thumbnails; ``write`` saves them as ``<track id>.jpg``."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.wanted: dict[int, list[tuple[int, list[float]]]] = {}
        for track in result["tracks"][:MAX_THUMBS]:
            middle = len(track["frames"]) // 2
            self.wanted.setdefault(track["frames"][middle], []).append((track["id"], track["boxes"][middle]))
        self.crops: dict[int, np.ndarray] = {}

    @property
    def last_frame(self) -> int:
        return max(self.wanted, default=-1)

    def see(self, frame: Frame) -> None:
        for track_id, box in self.wanted.get(frame.index, []):
            self.crops[track_id] = face_crop(frame.rgb, [v * frame.scale for v in box])

    def write(self, out_dir: str | Path) -> dict[int, Path]:
        out_dir = Path(out_dir)
        written: dict[int, Path] = {}
        for track_id, crop in sorted(self.crops.items()):
            out_dir.mkdir(parents=True, exist_ok=True)
            written[track_id] = out_dir / f"{track_id}.jpg"
            cv2.imwrite(str(written[track_id]), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        return written


def write_face_thumbnails(video_path: str | Path, result: dict[str, Any], out_dir: str | Path,
                          limits: VideoLimits | None = None) -> dict[int, Path]:
    """``out_dir/<track id>.jpg`` for up to MAX_THUMBS tracks, decoding the video up to the last frame needed."""
    thumbnails = FaceThumbnails(result)
    if thumbnails.wanted:
        for frame in iter_frames(video_path, limits, max_frames=thumbnails.last_frame + 1):
            thumbnails.see(frame)
    return thumbnails.write(out_dir)
