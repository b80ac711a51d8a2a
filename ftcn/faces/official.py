"""Constants of the official FTCN video pipeline (``test_on_raw_video.py`` and its helpers), in one place.

The published checkpoint was trained on faces prepared exactly this way, so changing any of these changes what the
model sees. Values come from the official code, as recorded in tests/fixtures/reference_pipeline/README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ftcn.faces.types import Face

#: Detector score from which a detection counts as a face, and how many faces per frame are kept.
VALID_FACE_SCORE = 0.5
MAX_FACES_PER_FRAME = 10
#: A track may only start on a confident face that does not overlap an earlier (higher-scored) face of its frame.
TRACK_START_SCORE = 0.8
TRACK_START_MAX_IOU = 0.5
#: A track continues to the face with the highest IoU with its previous face, if that IoU reaches this value.
TRACK_LINK_MIN_IOU = 0.5
#: Crop boxes grow the face box by this fraction of its width/height on each side.
CROP_GROW = 0.5
#: Frames per clip and aligned face size of the official model.
CLIP_LEN = 32
ALIGNED_SIZE = 224
#: 5-point template (left eye, right eye, nose tip, left and right mouth corners) in the 224x224 aligned face.
STD_POINTS_224 = np.array(
    [[75.101171, 75.0568], [147.92155, 73.795838], [111.62725, 119.875525], [79.35935, 152.863725],
     [146.393538, 151.701638]],
    dtype=np.float64,
)
#: 0-based 68-point indices: eyes are the means of 36-41 and 42-47; nose tip 30; mouth corners 48 and 54.
LEFT_EYE_68 = slice(36, 42)
RIGHT_EYE_68 = slice(42, 48)
NOSE_TIP_68 = 30
MOUTH_LEFT_68 = 48
MOUTH_RIGHT_68 = 54


def keep_valid(faces: list[Face]) -> list[Face]:
    """A frame's faces as the official pipeline keeps them: valid scores only, highest first, at most ten."""
    faces = sorted(faces, key=lambda f: -f.score)
    return [f for f in faces if f.score >= VALID_FACE_SCORE][:MAX_FACES_PER_FRAME]
