"""The face pipeline against what the official code made of cached detections (reference_pipeline fixtures)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ftcn.faces import official
from ftcn.faces.align import clip_affine, five_from_68, warp_face
from ftcn.faces.clips import clip_windows, crop_boxes
from ftcn.faces.tracking import link_official
from ftcn.faces.types import Face
from ftcn.predict.scoring import frame_scores, mean_score
from tests.parity_recipe import FIXTURES, load_json

pytestmark = pytest.mark.pipeline_parity

MATRIX_ATOL = 1e-4
SCORE_ATOL = 1e-6
PIXEL_ATOL = 1


def pipeline_dir() -> Path:
    return Path(os.environ.get("FTCN_PIPELINE_DIR") or FIXTURES / "reference_pipeline")


def _cases() -> list[Path]:
    return sorted(p.parent for p in pipeline_dir().glob("*/expected.json"))


def _faces(case_input: dict[str, Any]) -> list[list[Face]]:
    return [
        [
            Face(
                box=np.asarray(f["box"], dtype=np.float64),
                score=float(f["score"]),
                points5=np.asarray(f["lm5"], dtype=np.float64).reshape(5, 2),
                landmarks68=np.asarray(f["lm68"], dtype=np.float64).reshape(68, 2),
            )
            for f in frame
        ]
        for frame in case_input["frames"]
    ]


class Case:
    """Run the official-mode pipeline once per fixture folder; tests compare its parts."""

    def __init__(self, folder: Path) -> None:
        self.input = load_json(folder / "input.json")
        self.expected = load_json(folder / "expected.json")
        self.frames = _faces(self.input)
        size = self.input["frame_size"]
        self.frame_size = (size["width"], size["height"])
        self.mode, self.tracks = link_official(self.frames)
        clip_len = self.expected["clip_size"]
        stride = self.expected["clip_stride"]
        self.windows = [w for i, t in enumerate(self.tracks) for w in clip_windows(t, i, clip_len, stride)]
        self.crops = [crop_boxes(t.boxes, self.frame_size) for t in self.tracks]

    def clip_affine(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        window = self.windows[index]
        track = self.tracks[window.track]
        return clip_affine(track.points5[window.positions], self.crops[window.track][window.positions])


_loaded: dict[Path, Case] = {}


@pytest.fixture(params=_cases(), ids=lambda p: p.name)
def case(request) -> Case:
    if request.param not in _loaded:
        _loaded[request.param] = Case(request.param)
    return _loaded[request.param]


def test_fixture_cases_exist() -> None:
    assert _cases(), f"no */expected.json under {pipeline_dir()}"


def test_template_points(case: Case) -> None:
    np.testing.assert_allclose(official.STD_POINTS_224.ravel(), case.expected["std_points_224"], atol=1e-6)


def test_tracks(case: Case) -> None:
    assert case.mode.value == case.expected["tracking_mode"]
    got = [(t.start, t.end, t.detection_index) for t in case.tracks]
    want = [(t["start"], t["end"], t["detection_index"]) for t in case.expected["tracks"]]
    assert got == want


def test_crop_boxes(case: Case) -> None:
    for track_index, want in enumerate(case.expected["tracks"]):
        assert case.crops[track_index].tolist() == want["crop_box"], f"track {track_index}"


def test_clip_windows(case: Case) -> None:
    got = [(w.track, w.positions.tolist(), w.frames.tolist()) for w in case.windows]
    want = [(c["track"], c["positions"], c["frames"]) for c in case.expected["clips"]]
    assert len(got) == len(want)
    for index, (ours, theirs) in enumerate(zip(got, want)):
        assert ours == theirs, f"clip {index}"


def test_clip_affines(case: Case) -> None:
    for index, clip in enumerate(case.expected["clips"]):
        affine, origin = case.clip_affine(index)
        assert origin.tolist() == clip["canvas_origin"], f"clip {index}"
        np.testing.assert_allclose(affine.ravel(), clip["affine_frame_to_aligned"], atol=MATRIX_ATOL,
                                   err_msg=f"clip {index}")


def _synthetic_frame(t: int, width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    red = (7 * x + 3 * y + 11 * t) % 256
    green = (2 * x + 5 * y + 3 * t) % 256
    blue = (13 * (x // 8) + 17 * (y // 8) + t) % 256
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def test_aligned_pixels(case: Case) -> None:
    width, height = case.frame_size
    for sample in case.expected["aligned_pixels_synthetic"]:
        window = case.windows[sample["clip"]]
        position = window.positions[sample["index_in_clip"]]
        frame_number = int(window.frames[sample["index_in_clip"]])
        assert frame_number == sample["frame"]
        affine, _ = case.clip_affine(sample["clip"])
        crop = case.crops[window.track][position]
        aligned = warp_face(_synthetic_frame(frame_number, width, height), crop, affine, official.ALIGNED_SIZE)
        grid = sample["grid_rows_cols"]
        rows, cols = (grid, grid) if np.ndim(grid) == 1 else grid  # one list serves as both, or [rows, cols]
        got = aligned[np.ix_(rows, cols)].astype(np.int64).ravel()
        diff = np.abs(got - np.asarray(sample["grid_values"], dtype=np.int64))
        assert diff.max() <= PIXEL_ATOL, f"clip {sample['clip']} slot {sample['index_in_clip']}: max |diff| {diff.max()}"
        if "mean_rgb" in sample:
            np.testing.assert_allclose(aligned.reshape(-1, 3).mean(axis=0), sample["mean_rgb"], atol=PIXEL_ATOL)


def test_score_combination(case: Case) -> None:
    predictions = case.expected["clip_predictions_synthetic"]
    got = frame_scores(case.windows, predictions, len(case.frames))
    want = case.expected["frame_scores"]
    assert [g is None for g in got] == [w is None for w in want]
    np.testing.assert_allclose([g for g in got if g is not None], [w for w in want if w is not None], atol=SCORE_ATOL)
    assert mean_score(predictions) == pytest.approx(case.expected["video_score"], abs=SCORE_ATOL)


def test_five_points_from_68(case: Case) -> None:
    for sample in case.expected["five_from_68"]:
        face = case.frames[sample["frame"]][sample["detection"]]
        np.testing.assert_allclose(five_from_68(face.landmarks68).ravel(), sample["five_from_68"], atol=1e-3)
