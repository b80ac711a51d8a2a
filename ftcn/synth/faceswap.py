"""Face swap by graphics, the way the FaceSwap subset of FaceForensics++ was made (``ftcn synth --methods faceswap``).

For every frame of the target video, independently: the target face's 68 landmarks drive a piecewise-affine warp
of a *different* identity's face (Delaunay triangles over the 68 points of the source face), the warped face's
colour is matched to the target's skin (mean and spread per channel in Lab, inside the face, Reinhard's transfer),
and it is blended into the frame through a mask feathered inwards from the landmarks' convex hull, as the FaceSwap
tool behind FaceForensics++ blends. (OpenCV's Poisson cloning was tried: on faces this small it returned the target
face almost unchanged, its mean change inside the face 2-3 grey levels, so it made no swap at all.) The landmarks
are found anew in every frame, so the swapped face follows the head with the small frame-to-frame wobble of a real
landmark detector: the temporal incoherence FTCN is made to see.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SourceFace:
    """An identity to paste: an RGB image and its face's 68 landmarks (in that image's pixels)."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray  # [68, 2]


def delaunay(points: np.ndarray) -> np.ndarray:
    """Index triples of the Delaunay triangulation of ``points`` [N, 2] (cv2.Subdiv2D), each triangle once."""
    low, high = points.min(axis=0) - 1, points.max(axis=0) + 1
    subdiv = cv2.Subdiv2D((int(low[0]), int(low[1]), int(high[0] - low[0]) + 2, int(high[1] - low[1]) + 2))
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    lookup = {(round(float(x), 3), round(float(y), 3)): index for index, (x, y) in enumerate(points)}
    triangles = set()
    for x1, y1, x2, y2, x3, y3 in subdiv.getTriangleList():
        corners = [lookup.get((round(float(x), 3), round(float(y), 3))) for x, y in ((x1, y1), (x2, y2), (x3, y3))]
        if None not in corners and len(set(corners)) == 3:
            triangles.add(tuple(sorted(corners)))
    return np.array(sorted(triangles), np.int64)


def warp_face(source: SourceFace, target: np.ndarray, shape: tuple[int, int],
              triangles: np.ndarray) -> np.ndarray:
    """The source face moved onto the target landmarks, triangle by triangle (float32 RGB, zeros outside)."""
    height, width = shape
    out = np.zeros((height, width, 3), np.float32)
    image = source.image.astype(np.float32)
    for a, b, c in triangles:
        src = source.landmarks[[a, b, c]].astype(np.float32)
        dst = target[[a, b, c]].astype(np.float32)
        x, y, w, h = cv2.boundingRect(dst)
        if w <= 0 or h <= 0 or x >= width or y >= height or x + w <= 0 or y + h <= 0:
            continue
        matrix = cv2.getAffineTransform(src, dst - np.float32([x, y]))
        patch = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        mask = np.zeros((h, w), np.float32)
        cv2.fillConvexPoly(mask, np.round(dst - [x, y]).astype(np.int32), 1.0, lineType=cv2.LINE_AA)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        region = out[y0:y1, x0:x1]
        weight = mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
        region[:] = region * (1 - weight) + patch[y0 - y:y1 - y, x0 - x:x1 - x] * weight
    return out


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The face's convex hull as a uint8 mask (255 inside)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 255)
    return mask


def match_colour(face: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The face's colour moved to the target's inside the mask: Lab mean and spread per channel (Reinhard)."""
    inside = mask > 0
    if inside.sum() < 16:
        return face
    source = cv2.cvtColor(np.clip(face, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    target = cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = source[inside].mean(0), source[inside].std(0) + 1e-3
    t_mean, t_std = target[inside].mean(0), target[inside].std(0) + 1e-3
    moved = np.clip((source - s_mean) * (t_std / s_std) + t_mean, 0, 255).astype(np.uint8)
    return cv2.cvtColor(moved, cv2.COLOR_LAB2RGB).astype(np.float32)


def swap_face(frame: np.ndarray, target: np.ndarray, source: SourceFace) -> np.ndarray:
    """``frame`` (RGB) with the face at landmarks ``target`` replaced by ``source``'s face: warped, colour-matched
    to the target's skin, and blended in with a mask feathered inwards from the landmarks' hull (the blending of
    the FaceSwap tool FaceForensics++ used: no seam at the hull, the new face inside it)."""
    height, width = frame.shape[:2]
    warped = warp_face(source, target, (height, width), triangles_of(source))
    mask = hull_mask(target, (height, width))
    span = max(1.0, float(np.ptp(target[:, 0])))
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, int(0.04 * span)))
    warped = match_colour(warped, frame, inner)
    feather = cv2.GaussianBlur(inner.astype(np.float32) / 255, (0, 0), max(1.0, 0.04 * span))[..., None]
    feather *= (mask > 0)[..., None]  # nothing of the warp outside the face's hull, where it holds no face
    base = np.clip(frame, 0, 255).astype(np.float32)
    return warped * feather + base * (1 - feather)


@functools.lru_cache(maxsize=8)
def _triangles(name: str, key: bytes) -> np.ndarray:
    return delaunay(np.frombuffer(key, np.float64).reshape(-1, 2))


def triangles_of(source: SourceFace) -> np.ndarray:
    """The source face's triangulation, computed once per face."""
    return _triangles(source.name, source.landmarks.astype(np.float64).tobytes())
