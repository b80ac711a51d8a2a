"""Prior boxes, SSD-style box/landmark decoding and NMS for RetinaFace (numpy; torchvision's ops do not load here)."""

from __future__ import annotations

import math

import numpy as np


def prior_boxes(
    image_size: tuple[int, int], min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...]
) -> np.ndarray:
    """Anchors [P, 4] as (centre x, centre y, w, h) relative to the image, ordered by level, row, column, size.

    ``image_size`` is (height, width); each level's grid is ceil(size / step), as in the official PriorBox.
    """
    height, width = image_size
    levels = []
    for sizes, step in zip(min_sizes, steps):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width,
                             indexing="ij")
        per_size = [
            np.stack([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)], axis=-1) for s in sizes
        ]
        levels.append(np.stack(per_size, axis=2).reshape(-1, 4))  # [rows, cols, sizes, 4] -> row-major
    return np.concatenate(levels).astype(np.float32)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """Regressions [P, 4] -> boxes (x1, y1, x2, y2) relative to the image."""
    centres = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(loc[:, 2:] * variances[1])
    top_left = centres - sizes / 2
    return np.concatenate([top_left, top_left + sizes], axis=1)


def decode_landmarks(landms: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """Regressions [P, 10] -> 5 points (x, y)*5 relative to the image."""
    offsets = landms.reshape(-1, 5, 2) * variances[0] * priors[:, None, 2:]
    return (priors[:, None, :2] + offsets).reshape(-1, 10)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, over: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, highest score first.

    Areas use the official "+1" pixel convention (py_cpu_nms), so the official thresholds mean the same here.
    ``over="smaller"`` divides the intersection by the smaller box's area instead of the union (MTCNN's last
    stage: a box inside a bigger one is the same face).
    """
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        inter = width * height
        denominator = np.minimum(areas[best], areas[rest]) if over == "smaller" else areas[best] + areas[rest] - inter
        overlap = inter / denominator
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
