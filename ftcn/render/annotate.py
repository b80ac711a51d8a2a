"""The annotated video: every face boxed and coloured by its current score, a label, and a timeline strip.

Written as H.264 in MP4 (:class:`ftcn.video.encode.VideoWriter`) so browsers play it. Frames are streamed from
a fresh decode, so memory does not grow with the video.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ftcn.video.ahead import read_ahead
from ftcn.video.decode import Frame, VideoLimits, iter_frames, scaled
from ftcn.video.encode import VideoWriter

STRIP_HEIGHT = 28
#: The annotated video is at most this many pixels a frame (854x480 for 16:9) and written with x264's fastest
#: preset: it is for looking at what was judged, and at the source's size it cost a third of a 720p job
#: (bench/bench_predict.py measures its share).
ANNOTATED_MAX_PIXELS = 854 * 480
ANNOTATED_PRESET = "ultrafast"
ANNOTATED_CRF = 26
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


def annotated_scale(width: int, height: int, max_pixels: int = ANNOTATED_MAX_PIXELS) -> float:
    """How much smaller than the video the annotated video is (1: the video's size)."""
    return min(1.0, math.sqrt(max_pixels / max(1, width * height)))


def _draw(rgb: np.ndarray, faces: list[tuple[dict[str, Any], int]], threshold: float, scale: float) -> None:
    """Boxes and labels; ``scale`` maps the result's (video) coordinates onto ``rgb``."""
    thickness = max(1, round(max(rgb.shape[:2]) / 320))
    font_scale = max(0.35, max(rgb.shape[:2]) / 1400)
    for track, position in faces:
        score = track["timeline"][position]
        colour = score_colour(score, threshold)
        x1, y1, x2, y2 = (int(round(v * scale)) for v in track["boxes"][position])
        cv2.rectangle(rgb, (x1, y1), (x2, y2), colour, thickness)
        label = f"face {track['id']}: " + ("not judged" if score is None else f"{score:.3g}")
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(rgb, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(rgb, label, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1,
                    cv2.LINE_AA)


def write_annotated_video(
    video_path: str | Path,
    result: dict[str, Any],
    out_path: str | Path,
    limits: VideoLimits | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> Path:
    """Decode ``video_path`` again (at the annotated size, read ahead in a thread) and write the annotated MP4
    (H.264, yuv420p)."""
    out_path = Path(out_path)
    info = result["input"]
    frames_read = info["frames_read"]
    scale = annotated_scale(info["width"], info["height"])
    width, height = (scaled(info["width"], scale), scaled(info["height"], scale)) if scale < 1 else (
        info["width"], info["height"])
    strip = _strip(result, width, max(1, frames_read))
    faces_at = _frame_index(result)
    with VideoWriter(out_path, width, height + STRIP_HEIGHT, info["fps"] or 25.0, crf=ANNOTATED_CRF,
                     preset=ANNOTATED_PRESET) as writer:
        for frame in read_ahead(iter_frames(video_path, limits, max_frames=frames_read, scale=scale)):
            canvas = np.empty((height + STRIP_HEIGHT, width, 3), dtype=np.uint8)
            canvas[:height] = frame.rgb
            _draw(canvas[:height], faces_at.get(frame.index, []), result["threshold"], frame.scale)
            canvas[height:] = strip
            cursor = min(width - 1, int(frame.index * width / max(1, frames_read)))
            canvas[height:, cursor] = 255
            writer.write(canvas)
            if on_frame:
                on_frame(frame)  # the decoded frame, undrawn (progress, thumbnails)
    return out_path
