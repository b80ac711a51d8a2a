"""MTCNN face detection on one RGB frame: an image pyramid through P-Net, its proposals refined by R-Net on 24x24
crops and by O-Net on 48x48 crops, which also gives the 5 points (eye centres, nose tip, mouth corners: the same
points, in the same order, as RetinaFace's, which the official alignment uses).

The cascade follows the paper and the constants of the authors' release as facenet-pytorch keeps them (pyramid
factor 0.709, stage thresholds 0.6 / 0.7 / 0.7, NMS 0.5 within a scale, 0.7 across scales and after R-Net, 0.7 on
the smaller box after O-Net), so its weights behave as they were trained to.

Model card. Weights: facenet-pytorch 2.6.0's ``data/{pnet,rnet,onet}.pt`` (MIT, Copyright (c) 2019 Timothy Esler),
converted from the MTCNN authors' Caffe models (kpzhang93/MTCNN_face_detection_alignment, trained on WIDER FACE for
boxes and CelebA for points); digests in ``ftcn.models.mtcnn``. Intended use here: finding faces (about 20 px and
up) and their 5 points in video frames, where dlib's HOG misses compressed, dark, rolled and backlit ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ftcn.models.box_ops import nms
from ftcn.models.mtcnn import MTCNN

#: P-Net's window and stride (pixels of the scaled image).
CELL = 12
STRIDE = 2


@dataclass(frozen=True)
class MtcnnConfig:
    #: The smallest face looked for (box side, px of the frame): sets the pyramid's first scale, and its cost.
    min_face_px: float = 40.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709


@dataclass(frozen=True)
class Detections:
    """Faces of one frame in frame pixels: boxes [N, 4] (x1, y1, x2, y2), scores [N] (O-Net's face probability),
    points [N, 5, 2]; highest score first."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))


def pyramid_scales(height: int, width: int, min_face_px: float, factor: float) -> list[float]:
    """Scales at which P-Net's 12 px window covers faces from ``min_face_px`` to the whole frame."""
    scale = CELL / min_face_px
    side = min(height, width) * scale
    scales = []
    while side >= CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return (images - 127.5) * 0.0078125


def _proposals(offsets: np.ndarray, probability: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net's windows above ``threshold`` as rows [x1, y1, x2, y2, score, 4 offsets] in frame pixels."""
    ys, xs = np.nonzero(probability >= threshold)
    if ys.size == 0:
        return np.zeros((0, 9))
    x1, y1 = np.floor((STRIDE * xs + 1) / scale), np.floor((STRIDE * ys + 1) / scale)
    x2, y2 = np.floor((STRIDE * xs + CELL) / scale), np.floor((STRIDE * ys + CELL) / scale)
    return np.column_stack([x1, y1, x2, y2, probability[ys, xs], offsets[:, ys, xs].T])


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square around their centres (side: the longer one), as the next network's input is."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x1 = boxes[:, 0] + width * 0.5 - side * 0.5
    y1 = boxes[:, 1] + height * 0.5 - side * 0.5
    return np.column_stack([x1, y1, x1 + side, y1 + side])


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    width, height = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    return boxes[:, :4] + offsets * np.column_stack([width, height, width, height])


def _crops(model: MTCNN, areas: AreaSums, boxes: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Each box's pixels (clipped to the frame, 1-based as the authors' code counts) resized to ``size``; and the
    indices of the boxes that hold any pixel (the others are dropped)."""
    height, width = areas.height, areas.width
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    x1, y1 = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
    x2, y2 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
    valid = np.flatnonzero((x2 > x1 - 1) & (y2 > y1 - 1))
    if not len(valid):
        return torch.zeros((0, 3, size, size), device=model.device), valid
    rows = _windows(y1[valid] - 1, y2[valid] - y1[valid] + 1, size)
    cols = _windows(x1[valid] - 1, x2[valid] - x1[valid] + 1, size)
    return _batch(model, areas.crops(rows, cols)), valid


class AreaSums:
    """A frame's summed-area table, from which any box of it is resized by pixel areas as torch's
    ``F.interpolate(mode="area")`` (adaptive average pooling) does, to the last bit: the window of output pixel i
    is input pixels [floor(i * n / m), ceil((i + 1) * n / m)), summed exactly here, then divided by its height and
    its width in float32, as torch does.

    Why: the pyramid and the crops are the scan's largest cost, and torch pools each of them from the float frame
    anew (36 ms of a 76 ms 720p scan); one table serves them all: the scan takes 43 ms, its results unchanged."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.height, self.width = rgb.shape[:2]
        exact_in_int32 = 255 * self.height * self.width < 2**31
        self.table = cv2.integral(np.ascontiguousarray(rgb), sdepth=cv2.CV_32S if exact_in_int32 else cv2.CV_64F)

    def resized(self, height: int, width: int) -> np.ndarray:
        """The whole frame at ``height`` x ``width``: float32 [height, width, 3] (rows first, then columns: two
        gathers of whole rows, where the crops' four-corner gather would cost six times more here)."""
        (r0, r1), (c0, c1) = _windows(0, self.height, height), _windows(0, self.width, width)
        rows = np.take(self.table, r1, axis=0) - np.take(self.table, r0, axis=0)
        sums = np.take(rows, c1, axis=1) - np.take(rows, c0, axis=1)
        return _means(sums, (r1 - r0)[:, None, None], (c1 - c0)[None, :, None])

    def crops(self, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Boxes given by their output windows (each [N, size]): float32 [N, size, size, 3]."""
        (r0, r1), (c0, c1) = rows, cols
        table = self.table
        sums = (table[r1[:, :, None], c1[:, None, :]] - table[r0[:, :, None], c1[:, None, :]]
                - table[r1[:, :, None], c0[:, None, :]] + table[r0[:, :, None], c0[:, None, :]])
        return _means(sums, (r1 - r0)[:, :, None, None], (c1 - c0)[:, None, :, None])


def _means(sums: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Window sums to means as torch's pooling makes them: in float32, divided by the height, then the width."""
    return sums.astype(np.float32) / heights.astype(np.float32) / widths.astype(np.float32)


def _windows(origin: np.ndarray | int, extent: np.ndarray | int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling's windows: start and end rows (or columns) of ``size`` outputs over ``extent`` inputs from
    ``origin``: [size] for one span, [N, size] for N boxes."""
    i = np.arange(size)
    origin, extent = np.asarray(origin)[..., None], np.asarray(extent)[..., None]
    return origin + (i * extent) // size, origin - ((-(i + 1) * extent) // size)


def _batch(model: MTCNN, images: np.ndarray) -> torch.Tensor:
    """float32 [N, H, W, 3] as the networks' contiguous NCHW batch, on the model's device."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(model.device)


@torch.inference_mode()
def detect_faces(model: MTCNN, rgb: np.ndarray, config: MtcnnConfig = MtcnnConfig()) -> Detections:
    """The faces MTCNN finds in one RGB frame (uint8, [H, W, 3])."""
    areas = AreaSums(rgb)
    height, width = rgb.shape[:2]
    first, second, third = config.thresholds

    found = []
    for scale in pyramid_scales(height, width, config.min_face_px, config.factor):
        scaled = _batch(model, areas.resized(int(height * scale + 1), int(width * scale + 1))[None])
        offsets, probability = model.pnet(_normalise(scaled))
        rows = _proposals(offsets[0].cpu().numpy(), probability[0].cpu().numpy(), scale, first)
        if len(rows):
            found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
    if not found:
        return Detections.empty()
    rows = np.concatenate(found)
    rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
    width_, height_ = rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]
    boxes = _square(rows[:, :4] + rows[:, 5:9] * np.column_stack([width_, height_, width_, height_]))

    boxes, offsets, scores = _refine_stage(model, areas, boxes, second)
    if not len(boxes):
        return Detections.empty()
    keep = nms(boxes, scores, 0.7)
    boxes = _square(_regress(boxes[keep], offsets[keep]))

    return _output_stage(model, areas, boxes, third)


def _refine_stage(model: MTCNN, areas: AreaSums, boxes: np.ndarray,
                  threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-Net on square boxes: the boxes it passes, with their regression offsets and probabilities."""
    crops, valid = _crops(model, areas, boxes, 24)
    if not len(valid):
        return boxes[:0], np.zeros((0, 4)), np.zeros(0)
    offsets, probability = (t.cpu().numpy() for t in model.rnet(_normalise(crops)))
    passed = probability > threshold
    return boxes[valid][passed], offsets[passed], probability[passed]


def _output_stage(model: MTCNN, areas: AreaSums, boxes: np.ndarray, threshold: float) -> Detections:
    """O-Net on square boxes: those it calls faces, with its box regression and 5 points."""
    crops, valid = _crops(model, areas, boxes, 48)
    if not len(valid):
        return Detections.empty()
    offsets, relative, probability = (t.cpu().numpy() for t in model.onet(_normalise(crops)))
    passed = probability > threshold
    boxes, offsets, relative, scores = boxes[valid][passed], offsets[passed], relative[passed], probability[passed]
    if not len(boxes):
        return Detections.empty()
    side_x, side_y = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points = np.stack([side_x[:, None] * relative[:, :5] + boxes[:, :1] - 1,
                       side_y[:, None] * relative[:, 5:] + boxes[:, 1:2] - 1], axis=-1)
    boxes = _regress(boxes, offsets)
    keep = nms(boxes, scores, 0.7, over="smaller")
    return Detections(boxes[keep], scores[keep].astype(np.float64), points[keep].astype(np.float64))


@torch.inference_mode()
def confirm_faces(model: MTCNN, rgb: np.ndarray, boxes: np.ndarray, threshold: float = MtcnnConfig.thresholds[2],
                  refine_threshold: float | None = None) -> Detections:
    """O-Net on boxes where faces are expected (followed faces), after R-Net when ``refine_threshold`` is given:
    about a millisecond per face, where a scan costs the pyramid. Returns the faces confirmed, their boxes refined
    by O-Net's regression."""
    if not len(boxes):
        return Detections.empty()
    areas = AreaSums(rgb)
    boxes = _square(np.asarray(boxes, np.float64))
    if refine_threshold is not None:
        boxes = _refine_stage(model, areas, boxes, refine_threshold)[0]
    return _output_stage(model, areas, boxes, threshold)
