"""Which tracks get a verdict: a face must be seen long enough and mostly inside the frame to be judged.

FTCN reads motion over a clip (32 frames for the official model). The official script pads a short track to a clip
by playing it forwards and backwards, and that back-and-forth is itself the kind of temporal incoherence the model
flags: on a real 8-s phone video, a 6-frame track of a face half outside the frame, padded, decided the video
(FAKE 0.98 at 2 % coverage). So in the product modes a track shorter than half a clip, or whose box lies mostly
outside the frame, is reported but not scored; the official mode keeps the official padding for parity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftcn.faces.types import Track

MIN_FRAMES = 12


@dataclass(frozen=True)
class JudgingRules:
    #: Fewest frames a judged track has; None: half the model's clip length (16 frames for the official model),
    #: and never fewer than ``MIN_FRAMES`` (a face seen for a quarter of a second is too little for any model).
    min_frames: int | None = None
    #: Least median share of the face box that lies inside the frame.
    min_inside: float = 0.6


def inside_share(boxes: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Per box, the share of its area inside the frame (width, height)."""
    width, height = frame_size
    boxes = np.asarray(boxes, dtype=np.float64)
    clipped = np.stack([np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height),
                        np.clip(boxes[:, 2], 0, width), np.clip(boxes[:, 3], 0, height)], axis=1)
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-9) * np.maximum(boxes[:, 3] - boxes[:, 1], 1e-9)
    inside = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(clipped[:, 3] - clipped[:, 1], 0)
    return inside / area


def unjudged_reasons(tracks: list[Track], frame_size: tuple[int, int], clip_len: int,
                     rules: JudgingRules | None = None) -> list[str | None]:
    """Per track, why it is not judged, or None when it is."""
    rules = rules or JudgingRules()
    min_frames = rules.min_frames or max(MIN_FRAMES, clip_len // 2)
    reasons: list[str | None] = []
    for track in tracks:
        if len(track) < min_frames:
            reasons.append(f"too short to judge: seen in {len(track)} frames, at least {min_frames} needed")
        elif float(np.median(inside_share(track.boxes, frame_size))) < rules.min_inside:
            reasons.append("too little of the face is inside the frame to judge")
        else:
            reasons.append(None)
    return reasons
