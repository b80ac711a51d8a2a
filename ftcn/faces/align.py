"""Face alignment: one similarity transform per clip, fitted jointly to the 5 points of all its frames.

One transform per clip (not per frame) is what makes FTCN work: per-frame alignment would itself add the temporal
jitter the model is trained to detect. The fit follows MATLAB's cp2tform 'similarity' as the official code does:
solve the non-reflective similarity by least squares, solve it again with x mirrored, keep the smaller residual.
"""

from __future__ import annotations

import cv2
import numpy as np

from ftcn.faces import official


def five_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """[68, 2] -> [5, 2]: eye centres, nose tip, mouth corners (for detectors without 5 points, e.g. dlib)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack(
        [
            lm[official.LEFT_EYE_68].mean(axis=0),
            lm[official.RIGHT_EYE_68].mean(axis=0),
            lm[official.NOSE_TIP_68],
            lm[official.MOUTH_LEFT_68],
            lm[official.MOUTH_RIGHT_68],
        ]
    )


def _nonreflective_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 matrix T (row-vector convention, [x y 1] @ T) mapping src to dst, least squares (cp2tform)."""
    x, y = dst[:, 0:1], dst[:, 1:2]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    design = np.vstack([np.hstack([x, y, ones, zeros]), np.hstack([y, -x, zeros, ones])])
    target = np.vstack([src[:, 0:1], src[:, 1:2]])
    if np.linalg.matrix_rank(design) < 4:
        raise ValueError("a similarity transform needs at least two distinct points")
    sc, ss, tx, ty = np.linalg.lstsq(design, target, rcond=None)[0].ravel()
    inverse = np.array([[sc, -ss, 0.0], [ss, sc, 0.0], [tx, ty, 1.0]])
    forward = np.linalg.inv(inverse)
    forward[:, 2] = [0.0, 0.0, 1.0]
    return forward


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (np.hstack([points, np.ones((len(points), 1))]) @ transform)[:, :2]


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 OpenCV matrix of the best similarity (reflection allowed, as in cp2tform) from src to dst points."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    direct = _nonreflective_similarity(src, dst)
    mirrored_dst = dst * np.array([-1.0, 1.0])
    reflect = np.diag([-1.0, 1.0, 1.0])
    reflected = _nonreflective_similarity(src, mirrored_dst) @ reflect
    direct_error = np.linalg.norm(_apply(direct, src) - dst)
    reflected_error = np.linalg.norm(_apply(reflected, src) - dst)
    chosen = direct if direct_error <= reflected_error else reflected
    return chosen[:, :2].T


def clip_affine(
    points5: np.ndarray, crop_boxes: np.ndarray, size: int = official.ALIGNED_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """One frame-to-aligned 2x3 matrix for a clip, and the canvas origin it was fitted on.

    ``points5`` [T, 5, 2] and ``crop_boxes`` [T, 4] of the clip's frames. The official code fits on a canvas whose
    origin is the top-left-most crop corner; we fit there too (bit-for-bit parity) and fold the shift back in.
    """
    origin = crop_boxes[:, :2].min(axis=0).astype(np.float64)
    template = official.STD_POINTS_224 * (size / official.ALIGNED_SIZE)
    src = (np.asarray(points5, dtype=np.float64) - origin).reshape(-1, 2)
    dst = np.tile(template, (len(points5), 1))
    canvas_to_aligned = similarity_transform(src, dst)
    frame_to_aligned = canvas_to_aligned.copy()
    frame_to_aligned[:, 2] -= canvas_to_aligned[:, :2] @ origin
    return frame_to_aligned, origin.astype(np.int64)


def warp_face(frame: np.ndarray, crop_box: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The aligned face of one frame: pixels outside its crop box are black (official), bilinear warp.

    Only the crop region is copied and warped (with the matrix shifted to its origin), which gives the same
    image as masking the whole frame but touches far fewer pixels.
    """
    x1, y1, x2, y2 = (int(v) for v in crop_box)
    region = np.ascontiguousarray(frame[y1:y2, x1:x2])
    shifted = affine.astype(np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x1, y1], dtype=np.float64)
    if region.size == 0:
        return np.zeros((size, size, frame.shape[2]), dtype=frame.dtype)
    return cv2.warpAffine(region, shifted, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
