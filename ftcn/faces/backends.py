"""Face backends: one small interface, frame (RGB) -> faces with boxes, scores, 5 points and 68 landmarks.

- ``dlib`` (default, fully offline): dlib's HOG detector and the 68-point shape predictor whose weights ship in the
  ``face-recognition-models`` package. Nothing is downloaded at run time.
- ``retinaface``: the official detector (RetinaFace mobilenet0.25) and landmark network (MobileNet_GDConv), for users
  who have the official weight files; same preprocessing as the official video script.

Scores are probabilities in [0, 1] for both, so the official thresholds (0.5 valid, 0.8 to start a track) apply.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from ftcn.errors import BackendUnavailable
from ftcn.faces import official
from ftcn.faces.align import five_from_68
from ftcn.faces.types import Face
from ftcn.timing import StageTimer


class FaceBackend(Protocol):
    name: str
    timer: StageTimer  # seconds spent in "detect" and "landmarks"
    #: Detector runs every N frames by default; boxes are carried (and landmarks refitted) in between.
    preferred_detect_every: int

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces of one frame, highest score first, already filtered to valid faces."""
        ...

    def refit(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces carried from an earlier frame (no detection here), with landmarks refitted where that is cheap."""
        ...


def _detection_scale(shape: tuple[int, ...], detect_size: int | None) -> float:
    """Factor that brings the frame's longer side to ``detect_size`` (None: detect at full resolution)."""
    if not detect_size:
        return 1.0
    return detect_size / max(shape[:2])


DLIB_DETECT_SIZE = 640


def _keep_valid(faces: list[Face]) -> list[Face]:
    faces = sorted(faces, key=lambda f: -f.score)
    return [f for f in faces if f.score >= official.VALID_FACE_SCORE][: official.MAX_FACES_PER_FRAME]


# ------------------------------------------------------------------------------------------------------- dlib


def face_recognition_models_dir() -> Path:
    """Folder of the dlib model files inside the installed ``face-recognition-models`` package.

    Found through importlib's spec rather than by importing the package, whose ``__init__`` needs
    ``pkg_resources`` (gone from recent setuptools).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("the dlib backend needs the face-recognition-models package (pip install it)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / "shape_predictor_68_face_landmarks.dat").is_file():
        raise BackendUnavailable(f"shape_predictor_68_face_landmarks.dat is missing from {folder}")
    return folder


@dataclass
class DlibBackend:
    """HOG + linear SVM detector; its SVM margin m becomes a probability with a logistic, sigmoid(2m).

    A margin of 0 (dlib's own decision boundary) maps to 0.5, the official "valid face" threshold, and a margin of
    about 0.7 to 0.8, the track-start threshold. ``detect_size`` rescales frames so that their longer side has that
    many pixels before detection (default: 640, upscaling at most 2x): HOG finds faces from about 80 px, so small
    videos are upscaled, large ones downscaled for speed. Landmarks are always fitted on the full-resolution frame,
    on every frame, which is why boxes can be carried between detections (``preferred_detect_every``) without
    making the aligned faces jitter.
    """

    detect_size: int | None = None
    name: str = "dlib"
    preferred_detect_every: int = 3
    timer: StageTimer = field(default_factory=StageTimer)

    def __post_init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise BackendUnavailable("the dlib backend needs the dlib-bin package (pip install dlib-bin)") from None
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"))
        self._rectangle = dlib.rectangle

    def detect(self, rgb: np.ndarray) -> list[Face]:
        scale = _detection_scale(rgb.shape, self.detect_size) if self.detect_size else min(
            2.0, _detection_scale(rgb.shape, DLIB_DETECT_SIZE))
        small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
                                                     if scale < 1 else cv2.INTER_LINEAR)
        with self.timer.measure("detect"):
            rects, margins, _ = self._detector.run(np.ascontiguousarray(small), 0, -0.5)
        faces = []
        for rect, margin in zip(rects, margins):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64) / scale
            faces.append(self._face(rgb, box, 1.0 / (1.0 + math.exp(-2.0 * margin))))
        return _keep_valid(faces)

    def refit(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        return [self._face(rgb, face.box, face.score) for face in faces]

    def _face(self, rgb: np.ndarray, box: np.ndarray, score: float) -> Face:
        rect = self._rectangle(*(int(round(v)) for v in box))
        with self.timer.measure("landmarks"):
            shape = self._predictor(rgb, rect)
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        return Face(box=box, score=score, points5=five_from_68(landmarks), landmarks68=landmarks)


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
    #: RetinaFace's 5 points (used for alignment) only come with a detection, so detect on every frame.
    preferred_detect_every: int = 1
    timer: StageTimer = field(default_factory=StageTimer)

    def __post_init__(self) -> None:
        from ftcn.checkpoints import load_landmark_net, load_retinaface

        self._detector = load_retinaface(self.retinaface_weights, self.device)
        self._landmarks = load_landmark_net(self.landmark_weights, self.device)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        from ftcn.models.retinaface import detect

        scale = min(1.0, _detection_scale(rgb.shape, self.detect_size))
        image = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if self.bgr:
            image = image[:, :, ::-1]
        with self.timer.measure("detect"):
            found = detect(self._detector, image)
        keep = [i for i in range(len(found.scores)) if found.scores[i] >= official.VALID_FACE_SCORE]
        keep = keep[: official.MAX_FACES_PER_FRAME]
        boxes = found.boxes[keep] / scale
        points = found.points[keep] / scale
        with self.timer.measure("landmarks"):
            landmarks = self.landmarks68(rgb, boxes)
        faces = [
            Face(box=boxes[i].astype(np.float64), score=float(found.scores[k]), points5=points[i].astype(np.float64),
                 landmarks68=landmarks[i])
            for i, k in enumerate(keep)
        ]
        return _keep_valid(faces)

    def refit(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """RetinaFace's 5 points come only with a detection, so carried faces keep theirs unchanged."""
        return list(faces)

    @torch.inference_mode()
    def landmarks68(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if len(boxes) == 0:
            return np.zeros((0, 68, 2))
        crops, clipped = zip(*(landmark_input(rgb, box) for box in boxes))
        batch = (np.stack(crops).astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
        relative = self._landmarks(tensor).cpu().numpy().reshape(-1, 68, 2)
        boxes_int = np.asarray(clipped, dtype=np.float64)
        origin = boxes_int[:, None, :2]
        extent = boxes_int[:, None, 2:] - boxes_int[:, None, :2]
        return origin + relative * extent


def make_backend(
    name: str, *, device: str = "cpu", detect_size: int | None = None, retinaface_weights: str | Path | None = None,
    landmark_weights: str | Path | None = None,
) -> FaceBackend:
    """Build a backend by name; the retinaface backend needs both official weight files."""
    if name == "dlib":
        return DlibBackend(detect_size=detect_size)
    if name == "retinaface":
        if not retinaface_weights or not landmark_weights:
            raise BackendUnavailable(
                "the retinaface backend needs the official weight files: --retinaface-weights "
                "(mobilenet0.25_Final.pth) and --landmark-weights (MobileNet_GDConv .pth.tar)"
            )
        return RetinaFaceBackend(retinaface_weights, landmark_weights, device=device, detect_size=detect_size)
    raise BackendUnavailable(f"unknown face backend {name!r}; choose dlib or retinaface")
