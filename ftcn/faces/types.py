"""Plain data passed between pipeline steps: detected faces and face tracks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detection in one frame, in frame pixels: box (x1, y1, x2, y2), score, 5 points [5, 2], 68 points."""

    box: np.ndarray
    score: float
    points5: np.ndarray
    landmarks68: np.ndarray | None = None
    #: Frames this face has been carried without the detector confirming it (0: detected in this frame).
    carried: int = 0
    #: Share of skin-coloured pixels in the face's centre (None: not measured, or the frame has no usable colour).
    skin: float | None = None
    #: Consecutive frames, up to this one, in which the followed face measured as not skin (ftcn.faces.dlib_backend).
    unlike: int = 0
    #: Frames since the detector last looked at this face (0: it looked in this frame); in between, the face was
    #: followed by its landmarks and the detector's last word (its score) stands.
    unchecked: int = 0


#: Faces of each frame, highest score first.
FrameFaces = list[Face]


@dataclass
class Track:
    """One face followed over the contiguous frames [start, end).

    ``detection_index[i]`` is the index of the face in ``frames[start + i]`` that the track took, or -1 where the
    product tracker bridged a short gap (box and points are then interpolated).
    """

    start: int
    end: int
    detection_index: list[int]
    boxes: np.ndarray  # [N, 4]
    points5: np.ndarray  # [N, 5, 2]
    scores: np.ndarray  # [N], 0 where interpolated

    def __post_init__(self) -> None:
        length = self.end - self.start
        if length < 1 or not (len(self.detection_index) == len(self.boxes) == len(self.points5) == length):
            raise ValueError(f"inconsistent track over [{self.start}, {self.end}) with {len(self.boxes)} boxes")

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.start, self.end)

    @classmethod
    def from_detections(cls, frames: list[FrameFaces], start: int, detection_index: list[int]) -> "Track":
        faces = [frames[start + i][j] for i, j in enumerate(detection_index)]
        return cls(
            start=start,
            end=start + len(detection_index),
            detection_index=list(detection_index),
            boxes=np.array([f.box for f in faces], dtype=np.float64),
            points5=np.array([f.points5 for f in faces], dtype=np.float64),
            scores=np.array([f.score for f in faces], dtype=np.float64),
        )
