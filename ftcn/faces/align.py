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


def eye_roll_deg(points5: np.ndarray) -> float:
    """The in-plane roll of a face in degrees (image coordinates, y down) from its 5 points' eye line."""
    (left_x, left_y), (right_x, right_y) = points5[0], points5[1]
    return float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))


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


def warp_region(region: np.ndarray, origin: tuple[int, int], affine: np.ndarray, size: int) -> np.ndarray:
    """Warp a crop region whose top-left sits at ``origin`` in the frame, with a frame-to-aligned matrix.

    Everything outside the region is black, as in the official pipeline where only the frame's own crop box
    carries pixels; warping the region alone (matrix shifted to its origin) gives that image while touching far
    fewer pixels than masking the whole frame.
    """
    if region.size == 0:
        return np.zeros((size, size, 3), dtype=np.uint8)
    shifted = np.asarray(affine, dtype=np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.asarray(origin, dtype=np.float64)
    return cv2.warpAffine(np.ascontiguousarray(region), shifted, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp_clip(regions: list[np.ndarray], crop_boxes: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """A clip's aligned frames [T, size, size, 3]: each frame's crop region (top-left at its crop box) warped with
    the clip's one frame-to-aligned matrix."""
    return np.stack([warp_region(region, (int(box[0]), int(box[1])), affine, size)
                     for region, box in zip(regions, crop_boxes)])


def crop_region(frame: np.ndarray, crop_box: np.ndarray) -> np.ndarray:
    """The pixels of a crop box (end-exclusive slicing, as officially), copied so the frame can be freed."""
    x1, y1, x2, y2 = (int(v) for v in crop_box)
    return frame[y1:y2, x1:x2].copy()


def warp_face(frame: np.ndarray, crop_box: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The aligned face of one frame: only its crop box carries pixels, bilinear warp."""
    return warp_region(crop_region(frame, crop_box), (int(crop_box[0]), int(crop_box[1])), affine, size)
