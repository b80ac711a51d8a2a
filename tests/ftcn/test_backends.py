"""Face backends: the offline dlib backend on a real photo; the RetinaFace backend's plumbing and crop rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftcn.faces.backends import (
    BackendUnavailable,
    DlibBackend,
    RetinaFaceBackend,
    landmark_crop,
    landmark_input,
    make_backend,
)
from ftcn.faces.dlib_backend import DLIB_TRACKING, skin_share
from ftcn.faces.scan import scan_faces
from ftcn.video.encode import write_video
from tests.media import face_photo
from tests.parity_recipe import write_recipe_detector_files


def test_dlib_finds_the_face_with_landmarks_and_five_points() -> None:
    photo = face_photo()
    faces = DlibBackend().detect(photo)
    assert len(faces) >= 1
    best = faces[0]
    x1, y1, x2, y2 = best.box
    assert 0.5 <= best.score <= 1.0 and x2 - x1 > 40
    assert best.landmarks68.shape == (68, 2) and best.points5.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = best.points5
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert (x1 - 5 <= best.points5[:, 0]).all() and (best.points5[:, 0] <= x2 + 5).all()


def test_dlib_sees_no_face_in_noise() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert DlibBackend().detect(noise) == []


def test_landmark_crop_follows_the_official_rule() -> None:
    box = np.array([10.4, 20.0, 109.6, 139.0])  # w = 100.2, h = 120 -> size int(1.2 * 100.2) = 120
    clipped, source = landmark_crop(box, (480, 640, 3))
    cx, cy = 10.4 + 100.2 // 2, 20.0 + 120.0 // 2
    np.testing.assert_allclose(source, [cx - 60, cy - 60, cx + 60, cy + 60])
    assert clipped.tolist() == [int(cx - 60), int(cy - 60), int(cx + 60), int(cy + 60)]
    # near the border the crop is clipped and the outside zero-padded
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    crop, clipped = landmark_input(image, np.array([-20.0, -20.0, 40.0, 40.0]))
    assert crop.shape == (224, 224, 3) and clipped.tolist()[:2] == [0, 0]
    assert crop[:20, :20].max() == 0 and crop[-20:, -20:].min() == 200


def _recipe_retinaface(folder: Path, **options) -> RetinaFaceBackend:
    """The RetinaFace backend from official-format files holding recipe (random) weights."""
    detector, landmarks = write_recipe_detector_files(folder)
    return make_backend("retinaface", retinaface_weights=detector, landmark_weights=landmarks, **options)


def test_retinaface_backend_runs_on_official_format_files(tmp_path: Path) -> None:
    """With recipe weights (random), the detections mean nothing; the plumbing from files to faces is tested."""
    backend = _recipe_retinaface(tmp_path, detect_size=256)
    faces = backend.detect(face_photo())
    assert 1 <= len(faces) <= 10  # random weights still give many boxes above 0.5: the loop below runs
    for face in faces:
        assert face.box.shape == (4,) and face.points5.shape == (5, 2) and face.landmarks68.shape == (68, 2)
        assert face.score >= 0.5
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)


def test_retinaface_backend_needs_both_files() -> None:
    with pytest.raises(BackendUnavailable, match="--retinaface-weights"):
        make_backend("retinaface")
    with pytest.raises(BackendUnavailable, match="unknown face backend"):
        make_backend("blazeface")


def test_retinaface_batches_frames_without_changing_a_detection(tmp_path: Path) -> None:
    """A batch of frames through one detector pass gives each frame the faces it gets alone, and the scan uses the
    batch when the backend asks for one."""
    backend = _recipe_retinaface(tmp_path, detect_size=256)
    photo = face_photo()
    frames = [photo, np.ascontiguousarray(photo[:, ::-1]), np.ascontiguousarray(photo[::-1])]
    alone = [backend.detect(frame) for frame in frames]
    together = backend.detect_many(frames)
    assert [len(f) for f in together] == [len(f) for f in alone] and sum(map(len, alone)) > 0
    for one, many in zip(alone, together):
        for a, b in zip(one, many):
            np.testing.assert_allclose(b.box, a.box, atol=1e-3)
            np.testing.assert_allclose(b.landmarks68, a.landmarks68, atol=1e-3)
            assert abs(a.score - b.score) < 1e-5

    video = write_video(tmp_path / "clip.mp4", [frames[0]] * 5)
    passes = []
    detect_many = backend.detect_many
    backend.detect_many = lambda batch: passes.append(len(batch)) or detect_many(batch)
    backend.batch_size = 4
    scan = scan_faces(video, backend)
    assert passes == [4, 1] and scan.frames_read == 5 and all(scan.faces)


def test_skin_is_measured_in_colour_frames_only() -> None:
    """The photo's face is skin by the tracker's own threshold; a grey emblem in the same colour frame is no skin
    (HOG's typical false face); in a grey video skin cannot be measured, so the rule does not apply."""
    photo = face_photo()
    face = DlibBackend().detect(photo)[0]
    assert skin_share(photo, face.box) >= DLIB_TRACKING.min_skin
    x1, y1, x2, y2 = face.box.astype(int)
    emblem = photo.copy()
    emblem[y1:y2, x1:x2] = 150
    assert skin_share(emblem, face.box) == 0.0
    grey = np.repeat(photo.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert skin_share(grey, face.box) is None
