"""Face backends: one small interface, frame (RGB) -> faces with boxes, scores, 5 points and 68 landmarks.

- ``dlib`` (default, fully offline): dlib's HOG detector and the 68-point shape predictor whose weights ship in the
  ``face-recognition-models`` package. Nothing is downloaded at run time.
- ``retinaface``: the official detector (RetinaFace mobilenet0.25) and landmark network (MobileNet_GDConv), for users
  who have the official weight files; same preprocessing as the official video script.

Scores are probabilities in [0, 1] for both, calibrated per backend (dlib's SVM margin is mapped from measurement,
see ``ftcn.faces.dlib_backend``), so the official thresholds (0.5 valid, 0.8 to start a track) mean the same for
each. The dlib backend lives in its own module; this one holds the interface, RetinaFace and ``make_backend``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from ftcn.digests import file_sha256
from ftcn.errors import BackendUnavailable
from ftcn.faces import official
from ftcn.faces.dlib_backend import DlibBackend
from ftcn.faces.mtcnn_backend import MtcnnBackend
from ftcn.faces.names import BACKENDS, DLIB, MTCNN, RETINAFACE
from ftcn.faces.tracking import TrackerConfig
from ftcn.faces.types import Face
from ftcn.timing import StageTimer


class FaceBackend(Protocol):
    name: str
    timer: StageTimer  # seconds spent in "detect" and "landmarks"
    #: Track start and linking thresholds, measured for this backend's scores.
    tracker_config: TrackerConfig
    #: True when refit follows faces between full scans (and confirms them): faces a scan misses are then kept.
    follows_faces: bool

    def detect_interval(self, width: int, height: int) -> int:
        """Frames between full detections for frames of this size (1: every frame)."""
        ...

    def smallest_face_px(self, width: int, height: int) -> float:
        """The smallest face (box height, px) a full detection finds in such frames."""
        ...

    def detect(self, rgb: np.ndarray, coarse: bool = False) -> list[Face]:
        """Faces of one frame, highest score first, already filtered to valid faces. ``coarse``: a cheaper scan
        that may miss the smallest faces (a keyframe looking for faces that enter while others are followed)."""
        ...

    def refit(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces carried from an earlier frame (no detection here), with landmarks refitted where that is cheap."""
        ...


def _detection_scale(shape: tuple[int, ...], detect_size: int | None) -> float:
    """Factor that brings the frame's longer side to ``detect_size`` (None: detect at full resolution)."""
    if not detect_size:
        return 1.0
    return detect_size / max(shape[:2])


# ------------------------------------------------------------------------------------------------- retinaface


def landmark_crop(box: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The official square crop for the landmark network: crop box (int, clipped) and the zero-padded 224 input.

    Returns (crop_box [x1, y1, x2, y2] clipped to the image, source rectangle [sx1, sy1, sx2, sy2] before
    clipping); see the parity fixture README for the rule.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1 + 1, y2 - y1 + 1
    size = int(min(width, height) * 1.2)
    cx, cy = x1 + width // 2, y1 + height // 2
    sx1, sy1 = cx - size // 2, cy - size // 2
    source = np.array([sx1, sy1, sx1 + size, sy1 + size], dtype=np.float64)
    img_h, img_w = frame_shape[:2]
    clipped = np.array([max(0, source[0]), max(0, source[1]), min(img_w, source[2]), min(img_h, source[3])])
    return clipped.astype(np.int64), source


def landmark_input(rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """224x224 RGB crop (zero-padded outside the image) and the clipped integer crop box it maps back to."""
    clipped, source = landmark_crop(box, rgb.shape)
    cx1, cy1, cx2, cy2 = (int(v) for v in clipped)
    patch = rgb[cy1:cy2, cx1:cx2]
    top, left = int(cy1 - source[1]), int(cx1 - source[0])
    bottom, right = int(source[3] - cy2), int(source[2] - cx2)
    padded = cv2.copyMakeBorder(patch, max(top, 0), max(bottom, 0), max(left, 0), max(right, 0),
                                cv2.BORDER_CONSTANT, value=0) if patch.size else np.zeros((2, 2, 3), np.uint8)
    return cv2.resize(padded, (224, 224), interpolation=cv2.INTER_LINEAR), clipped


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class RetinaFaceBackend:
    """The official detector + landmark network, from the official weight files.

    By default frames go to RetinaFace as RGB, exactly as the official video script feeds them (the network was
    trained on BGR; ``bgr=True`` feeds BGR instead). ``detect_size`` (None = full resolution, the official
    behaviour) downscales frames for detection only.
    """

    retinaface_weights: str | Path
    landmark_weights: str | Path
    device: str = "cpu"
    detect_size: int | None = None
    bgr: bool = False
    name: str = "retinaface"
    timer: StageTimer = field(default_factory=StageTimer)
    #: The official thresholds were chosen for RetinaFace's scores.
    tracker_config: TrackerConfig = field(default_factory=TrackerConfig)
    follows_faces: bool = False
    #: What result.json records of the weights (the service sets the registered detector's id and name).
    weights: dict | None = None
    #: Frames per detector pass (0: 16 on CUDA, where one frame leaves the GPU mostly idle; 1 on a CPU, where a
    #: batch is no faster, see ``bench/bench_faces.py --backend retinaface``).
    batch_size: int = 0

    def detect_interval(self, width: int, height: int) -> int:
        """RetinaFace's 5 points (used for alignment) only come with a detection, so detect on every frame."""
        return 1

    def smallest_face_px(self, width: int, height: int) -> float:
        """Its smallest anchors are 16 px (stride 8), at the detection scale."""
        return 16.0 / min(1.0, _detection_scale((height, width), self.detect_size))

    def __post_init__(self) -> None:
        from ftcn.checkpoints import load_landmark_net, load_retinaface

        self._detector = load_retinaface(self.retinaface_weights, self.device)
        if self.batch_size < 1:
            self.batch_size = 16 if str(self.device).startswith("cuda") else 1
        self._landmarks = load_landmark_net(self.landmark_weights, self.device)
        if self.weights is None:
            self.weights = {"files": {role: {"sha256": file_sha256(path)} for role, path in (
                ("retinaface", self.retinaface_weights), ("landmarks", self.landmark_weights))}}

    def detect(self, rgb: np.ndarray, coarse: bool = False) -> list[Face]:
        return self.detect_many([rgb])[0]

    def detect_many(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """Faces of same-sized frames: one detector pass for all of them, one landmark pass for all their faces."""
        from ftcn.models.retinaface import detect_batch

        scale = min(1.0, _detection_scale(frames[0].shape, self.detect_size))
        images = [rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                  for rgb in frames]
        if self.bgr:
            images = [image[:, :, ::-1] for image in images]
        with self.timer.measure("detect"):
            found = detect_batch(self._detector, images)
        kept = [[k for k in range(len(f.scores)) if f.scores[k] >= official.VALID_FACE_SCORE]
                [: official.MAX_FACES_PER_FRAME] for f in found]
        boxes = [f.boxes[keep] / scale for f, keep in zip(found, kept)]
        with self.timer.measure("landmarks"):
            landmarks = self.landmarks68_many(frames, boxes)
        result = []
        for f, keep, frame_boxes, frame_landmarks in zip(found, kept, boxes, landmarks):
            points = f.points[keep] / scale
            result.append(official.keep_valid([
                Face(box=frame_boxes[i].astype(np.float64), score=float(f.scores[k]),
                     points5=points[i].astype(np.float64), landmarks68=frame_landmarks[i])
                for i, k in enumerate(keep)]))
        return result

    def refit(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """RetinaFace's 5 points come only with a detection, so carried faces keep theirs unchanged."""
        return list(faces)

    @torch.inference_mode()
    def landmarks68_many(self, frames: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """68 landmarks of every box of every frame, through the landmark network in one batch."""
        crops, clipped = [], []
        for rgb, frame_boxes in zip(frames, boxes):
            for box in frame_boxes:
                crop, crop_box = landmark_input(rgb, box)
                crops.append(crop)
                clipped.append(crop_box)
        if not crops:
            return [np.zeros((0, 68, 2)) for _ in frames]
        batch = (np.stack(crops).astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
        relative = self._landmarks(tensor).float().cpu().numpy().reshape(-1, 68, 2)
        boxes_int = np.asarray(clipped, dtype=np.float64)
        origin = boxes_int[:, None, :2]
        extent = boxes_int[:, None, 2:] - boxes_int[:, None, :2]
        absolute = origin + relative * extent
        counts = np.cumsum([len(frame_boxes) for frame_boxes in boxes])[:-1]
        return np.split(absolute, counts)


def make_backend(
    name: str, *, device: str = "cpu", detect_size: int | None = None, retinaface_weights: str | Path | None = None,
    landmark_weights: str | Path | None = None, min_face_px: int | None = None,
) -> FaceBackend:
    """Build a backend by name; the retinaface backend needs both official weight files."""
    floor = {"min_face_px": min_face_px} if min_face_px else {}
    if name == MTCNN:
        return MtcnnBackend(device=device, **floor)
    if name == DLIB:
        return DlibBackend(detect_size=detect_size, **floor)
    if name == RETINAFACE:
        if not retinaface_weights or not landmark_weights:
            raise BackendUnavailable(
                "the retinaface backend needs the official weight files: --retinaface-weights "
                "(mobilenet0.25_Final.pth) and --landmark-weights (MobileNet_GDConv .pth.tar)"
            )
        return RetinaFaceBackend(retinaface_weights, landmark_weights, device=device, detect_size=detect_size)
    raise BackendUnavailable(f"unknown face backend {name!r}; choose {', '.join(BACKENDS)}")
