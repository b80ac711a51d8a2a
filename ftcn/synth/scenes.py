"""Videos with known face boxes, for measuring how well faces are found (``bench/bench_faces.py`` and tests).

The face of the shipped photo is pasted, at a chosen height and in-plane roll, on a face-free background made from
the rest of the photo (suit, flag, hand: textured, with the edges that make face detectors fire falsely); the
camera drifts, and the frames are dimmed, blurred and H.264-compressed at a chosen CRF, then decoded again. The
ground-truth box is the face's box in the photo (brow to chin, ear to ear), scaled and moved with the face.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ftcn.synth.generate import media_dir
from ftcn.video.decode import iter_frames
from ftcn.video.encode import VideoWriter

#: The face in astronaut.png (x1, y1, x2, y2): dlib's HOG box on the clean photo (margin 1.53), brow to chin.
PHOTO_FACE_BOX = (179.0, 83.0, 266.0, 170.0)
#: Rows of the photo below the face and hair, used (mirrored and tiled) as a face-free background.
BACKGROUND_ROWS = (250, 512)


@dataclass(frozen=True)
class OtherFace:
    """A second face of the same photo, held still where it is put: what measures how soon a face that enters
    while another is followed is found (the keyframes' job)."""

    face_px: int
    centre: tuple[float, float]  # as a share of width and height
    visible: tuple[int, int]  # the frames [start, end) in which it is there


@dataclass(frozen=True)
class SceneSpec:
    face_px: int = 80  # height of the ground-truth face box in frame pixels; 0 = no face at all
    roll_deg: float = 0.0
    crf: int = 23
    blur_sigma: float = 0.0
    light: float = 1.0  # brightness gain; < 1 is dim light (with the sensor noise that comes with it)
    frames: int = 24
    size: tuple[int, int] = (640, 360)  # width, height
    fps: float = 25.0
    seed: int = 0
    visible: tuple[int, int] | None = None  # the frames [start, end) in which the face is there (None: all)
    centre: tuple[float, float] | None = None  # where the face's centre stays, as a share of width and height
    centre_to: tuple[float, float] | None = None  # with ``centre``: where it ends, crossing the frame (walking)
    backlight: float = 1.0  # > 1: a bright background (times this) behind a face darkened by as much
    others: tuple[OtherFace, ...] = ()  # more faces, each with its own ground-truth box


@dataclass
class Scene:
    spec: SceneSpec
    frames: list[np.ndarray]  # RGB, as decoded from the compressed video
    boxes: list[np.ndarray]  # ground truth per frame: [K, 4], the main face (when shown) first, then the others shown


def _photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media_dir() / "astronaut.png")), cv2.COLOR_BGR2RGB)


def _background(photo: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A face-free canvas larger than the frame (the camera pans over it)."""
    lower = photo[BACKGROUND_ROWS[0]:BACKGROUND_ROWS[1]]
    tile = np.concatenate([lower, lower[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1]], axis=0)
    scale = max((width + 64) / tile.shape[1], (height + 64) / tile.shape[0]) * float(rng.uniform(1.0, 1.4))
    return cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)


def _face_layer(photo: np.ndarray, face_px: int, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face patch RGB, its alpha mask, the box's centre inside the patch), scaled and rolled."""
    x1, y1, x2, y2 = PHOTO_FACE_BOX
    scale = face_px / (y2 - y1)
    pad = 0.6 * (y2 - y1)  # hair, ears and neck around the box
    left, top = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    right, bottom = int(min(photo.shape[1], x2 + pad)), int(min(photo.shape[0], y2 + pad))
    patch = photo[top:bottom, left:right]
    centre = np.array([(x1 + x2) / 2 - left, (y1 + y2) / 2 - top])
    mask = np.zeros(patch.shape[:2], np.float32)
    axes = (int((right - left) * 0.42), int((bottom - top) * 0.48))
    cv2.ellipse(mask, (int(centre[0]), int(centre[1] + 4)), axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    size = (max(2, round(patch.shape[1] * scale)), max(2, round(patch.shape[0] * scale)))
    patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
    centre = centre * np.array([size[0] / (right - left), size[1] / (bottom - top)])
    if roll_deg:
        side = int(np.ceil(np.hypot(*size))) + 2
        shift = np.array([side / 2 - centre[0], side / 2 - centre[1]])
        matrix = cv2.getRotationMatrix2D((side / 2, side / 2), roll_deg, 1.0)
        matrix[:, 2] += matrix[:, :2] @ shift
        patch = cv2.warpAffine(patch, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = cv2.warpAffine(mask, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
        centre = np.array([side / 2, side / 2])
    return patch, mask, centre


def render_scene(spec: SceneSpec) -> Scene:
    """The scene's frames after compression, with the ground-truth box of each frame."""
    rng = np.random.default_rng(spec.seed)
    width, height = spec.size
    photo = _photo()
    canvas = _background(photo, width, height, rng)
    span = np.array([canvas.shape[1] - width, canvas.shape[0] - height], dtype=np.float64)
    pan_from, pan_to = rng.uniform(0, 1, 2) * span, rng.uniform(0, 1, 2) * span
    face = _face_layer(photo, spec.face_px, spec.roll_deg) if spec.face_px else None
    half = _half_box(spec.face_px)
    margin = half * 1.3 + 2
    where_from = rng.uniform(margin, np.array([width, height]) - margin)
    if spec.centre is not None:
        where_from = np.array(spec.centre) * np.array([width, height])
    where_to = where_from if spec.centre is not None else np.clip(
        where_from + rng.uniform(-0.15, 0.15, 2) * np.array([width, height]), margin, np.array([width, height]) - margin)
    if spec.centre is not None and spec.centre_to is not None:
        where_to = np.array(spec.centre_to) * np.array([width, height])
    if face is not None and spec.backlight != 1.0:
        face = (face[0].astype(np.float32) / spec.backlight, *face[1:])
    others = [(other, _face_layer(photo, other.face_px), _half_box(other.face_px))
              for other in spec.others]
    raw, boxes = [], []
    for t in range(spec.frames):
        along = t / max(1, spec.frames - 1)
        x, y = (pan_from + (pan_to - pan_from) * along).astype(int)
        frame = canvas[y:y + height, x:x + width].astype(np.float32) * spec.backlight
        shown = spec.visible is None or spec.visible[0] <= t < spec.visible[1]
        if face is not None and shown:
            patch, mask, centre = face
            at = where_from + (where_to - where_from) * along
            frame = _paste(frame, patch, mask, at - centre)
            boxes.append(np.array([[at[0] - half[0], at[1] - half[1], at[0] + half[0], at[1] + half[1]]]))
        else:
            boxes.append(np.zeros((0, 4)))
        for other, (patch, mask, centre), other_half in others:
            if other.visible[0] <= t < other.visible[1]:
                at = np.array(other.centre) * np.array([width, height])
                frame = _paste(frame, patch, mask, at - centre)
                boxes[-1] = np.concatenate([boxes[-1], [np.concatenate([at - other_half, at + other_half])]])
        if spec.blur_sigma:
            frame = cv2.GaussianBlur(frame, (0, 0), spec.blur_sigma)
        if spec.light != 1.0:
            frame = frame * spec.light + rng.normal(0, 3.0, frame.shape)  # dim light brings sensor noise
        raw.append(np.clip(frame, 0, 255).astype(np.uint8))
    return Scene(spec=spec, frames=_compressed(raw, spec), boxes=boxes)


def _half_box(face_px: int) -> np.ndarray:
    """Half the width and height of the ground-truth box of a face ``face_px`` high."""
    x1, y1, x2, y2 = PHOTO_FACE_BOX
    return np.array([face_px * (x2 - x1) / (y2 - y1), face_px]) / 2


def _paste(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, origin: np.ndarray) -> np.ndarray:
    x, y = int(round(origin[0])), int(round(origin[1]))
    h, w = mask.shape
    fx1, fy1 = max(0, x), max(0, y)
    fx2, fy2 = min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if fx2 <= fx1 or fy2 <= fy1:
        return frame
    alpha = mask[fy1 - y:fy2 - y, fx1 - x:fx2 - x, None]
    region = patch[fy1 - y:fy2 - y, fx1 - x:fx2 - x].astype(np.float32)
    frame[fy1:fy2, fx1:fx2] = frame[fy1:fy2, fx1:fx2] * (1 - alpha) + region * alpha
    return frame


def _compressed(frames: list[np.ndarray], spec: SceneSpec) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="ftcn-scene-") as folder:
        path = Path(folder) / "scene.mp4"
        with VideoWriter(path, spec.size[0], spec.size[1], spec.fps, crf=spec.crf) as writer:
            for frame in frames:
                writer.write(frame)
        return [frame.rgb for frame in iter_frames(path)]


def write_scene(path: str | Path, scene: Scene) -> Path:
    """The scene's (already compressed) frames as a near-lossless MP4, for the CLI and the service."""
    with VideoWriter(path, scene.spec.size[0], scene.spec.size[1], scene.spec.fps, crf=10) as writer:
        for frame in scene.frames:
            writer.write(frame)
    return Path(path)
