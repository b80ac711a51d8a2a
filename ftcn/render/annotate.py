"""The annotated video: every face boxed and coloured by its current score, a label, and a timeline strip.

Written as H.264 in MP4 (:class:`ftcn.video.encode.VideoWriter`) so browsers play it. Frames are streamed from
a fresh decode, so memory does not grow with the video.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ftcn.video.decode import Frame, VideoLimits, iter_frames
from ftcn.video.encode import VideoWriter

STRIP_HEIGHT = 28
REAL_COLOUR = np.array([46, 204, 64])  # RGB green
FAKE_COLOUR = np.array([255, 65, 54])  # RGB red
UNKNOWN_COLOUR = (170, 170, 170)


def score_colour(score: float | None, threshold: float) -> tuple[int, int, int]:
    """Green below the threshold, red above, blended near it so that uncertain faces look uncertain."""
    if score is None:
        return UNKNOWN_COLOUR
    margin = min(0.15, threshold, 1 - threshold)  # the official model's threshold is 0.0026
    weight = float(np.clip((score - (threshold - margin)) / (2 * margin), 0.0, 1.0))
    colour = (1 - weight) * REAL_COLOUR + weight * FAKE_COLOUR
    return tuple(int(c) for c in colour)


def _frame_index(result: dict[str, Any]) -> dict[int, list[tuple[dict[str, Any], int]]]:
    """frame -> [(track, position in track)] for drawing."""
    index: dict[int, list[tuple[dict[str, Any], int]]] = {}
    for track in result["tracks"]:
        for position, frame in enumerate(track["frames"]):
            index.setdefault(frame, []).append((track, position))
    return index


def _strip(result: dict[str, Any], width: int, frames: int) -> np.ndarray:
    """Per-frame colour of the most suspicious face (grey where no face was scored)."""
    worst: list[float | None] = [None] * frames
    for track in result["tracks"]:
        for frame, score in zip(track["frames"], track["timeline"]):
            if score is not None and frame < frames and (worst[frame] is None or score > worst[frame]):
                worst[frame] = score
    strip = np.zeros((STRIP_HEIGHT, width, 3), dtype=np.uint8)
    strip[:] = 30
    for x in range(width):
        frame = min(frames - 1, int(x * frames / width))
        strip[6:, x] = score_colour(worst[frame], result["threshold"])
    return strip


def _draw(rgb: np.ndarray, faces: list[tuple[dict[str, Any], int]], threshold: float) -> None:
    thickness = max(1, round(max(rgb.shape[:2]) / 320))
    scale = max(0.35, max(rgb.shape[:2]) / 1400)
    for track, position in faces:
        score = track["timeline"][position]
        colour = score_colour(score, threshold)
        x1, y1, x2, y2 = (int(round(v)) for v in track["boxes"][position])
        cv2.rectangle(rgb, (x1, y1), (x2, y2), colour, thickness)
        label = f"face {track['id']}: " + ("not judged" if score is None else f"{score:.3g}")
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(rgb, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(rgb, label, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)


def write_annotated_video(
    video_path: str | Path,
    result: dict[str, Any],
    out_path: str | Path,
    limits: VideoLimits | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> Path:
    """Decode ``video_path`` again and write the annotated MP4 (H.264, yuv420p) to ``out_path``."""
    out_path = Path(out_path)
    info = result["input"]
    frames_read = info["frames_read"]
    width, height = info["width"], info["height"]
    strip = _strip(result, width, max(1, frames_read))
    faces_at = _frame_index(result)
    with VideoWriter(out_path, width, height + STRIP_HEIGHT, info["fps"] or 25.0) as writer:
        for frame in iter_frames(video_path, limits, max_frames=frames_read):
            canvas = np.zeros((height + STRIP_HEIGHT, width, 3), dtype=np.uint8)
            canvas[:height] = frame.rgb
            _draw(canvas[:height], faces_at.get(frame.index, []), result["threshold"])
            canvas[height:] = strip
            cursor = min(width - 1, int(frame.index * width / max(1, frames_read)))
            canvas[height:, cursor] = 255
            writer.write(canvas)
            if on_frame:
                on_frame(frame)  # the decoded frame, undrawn (progress, thumbnails)
    return out_path
