"""The adaptive pass (ftcn.predict.adaptive) and where faces are scanned (ftcn.faces.scan.ScanSchedule).

The adaptive pass must give exactly the half-clip stride's result for a track it looks at again and exactly one
pass's result for a track it does not; the schedule must scan where following needs it and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from ftcn.faces.backends import make_backend
from ftcn.faces.clips import clip_windows
from ftcn.faces.types import Face, Track
from ftcn.predict.adaptive import NEAR_LOGIT, half_shifted, looks_borderline, window_starts
from ftcn.faces.scan import ScanSchedule
from ftcn.predict.pipeline import PredictOptions, predict_video
from ftcn.video.decode import Frame
from tests.media import TALKING_FACE
from tests.models import untrained

COMPARED = ("tracks", "score", "verdict", "coverage", "mean_clip_score")


def _same(result: dict, other: dict) -> None:
    """Equal results, but for the adaptive pass's own note on each track."""
    for key in COMPARED:
        mine = result[key]
        if key == "tracks":
            mine = [{k: v for k, v in track.items() if k != "looked_again"} for track in mine]
        assert mine == other[key], key


def _track(length: int) -> Track:
    return Track(10, 10 + length, [0] * length, np.zeros((length, 4)), np.zeros((length, 5, 2)), np.ones(length))


@pytest.mark.parametrize("clip_len", [8, 16, 32])
@pytest.mark.parametrize("length", [3, 12, 16, 17, 23, 24, 31, 40, 47, 64, 100, 101])
def test_one_pass_and_its_half_shifted_clips_are_the_half_clip_stride(clip_len, length):
    track = _track(length)
    one_pass = clip_windows(track, 0, clip_len, clip_len)
    extra = half_shifted(one_pass, track, 0, clip_len // 2)
    half = clip_windows(track, 0, clip_len, clip_len // 2)
    starts = dict(zip(window_starts(one_pass, track), one_pass)) | dict(extra)
    assert sorted(starts) == window_starts(half, track)
    assert [starts[s].positions.tolist() for s in sorted(starts)] == [w.positions.tolist() for w in half]
    assert all(np.array_equal(w.frames, track.start + w.positions) for _, w in extra)


def test_borderline_means_disagreeing_clips_a_score_in_the_band_or_near_the_threshold():
    threshold = 0.5
    assert looks_borderline(np.array([0.1, 0.2, 0.6]), threshold)  # one clip on the other side
    assert not looks_borderline(np.array([0.01, 0.02, 0.03]), threshold)  # clear
    near = 1 / (1 + math.exp(NEAR_LOGIT / 2))  # half the margin below the threshold
    assert looks_borderline(np.array([near, near]), threshold)
    assert looks_borderline(np.array([0.05, 0.05]), threshold, band=(0.04, 0.6))
    assert not looks_borderline(np.array([]), threshold)


@pytest.fixture(scope="module")
def tiny():
    return untrained("tiny", seed=3)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _at(logit: float) -> float:
    return 1 / (1 + math.exp(-logit))


def test_a_borderline_track_gets_the_half_clip_result_and_a_clear_one_the_one_pass_result(tiny):
    model, checkpoint = tiny
    backend = make_backend("dlib")
    clip_len = model.cfg.clip_len
    one = predict_video(TALKING_FACE, model, checkpoint, backend, PredictOptions(stride=clip_len))
    # thresholds taken from this model's own one-pass scores: one at its score (borderline), one far above
    borderline = replace(checkpoint, threshold=one["score"])
    clear = replace(checkpoint, threshold=_at(_logit(one["score"]) + 3 * NEAR_LOGIT))
    half = predict_video(TALKING_FACE, model, borderline, backend, PredictOptions(stride=clip_len // 2))
    one = predict_video(TALKING_FACE, model, clear, backend, PredictOptions(stride=clip_len))
    assert one["tracks"][0]["clips"] < half["tracks"][0]["clips"]

    looked = predict_video(TALKING_FACE, model, borderline, backend, PredictOptions())
    assert looked["options"]["adaptive"] and looked["options"]["stride"] == clip_len
    assert looked["tracks"][0]["looked_again"] is True
    _same(looked, half)

    plain = predict_video(TALKING_FACE, model, clear, backend, PredictOptions())
    assert plain["tracks"][0]["looked_again"] is False
    _same(plain, one)


def _frame(index: int, value: int = 100) -> Frame:
    return Frame(index=index, time_s=index / 25, rgb=np.full((72, 128, 3), value, np.uint8))


def _face(carried: int = 0) -> Face:
    return Face(box=np.array([10.0, 10, 50, 50]), score=0.9, points5=np.zeros((5, 2)), carried=carried)


def test_the_schedule_scans_where_following_needs_it():
    schedule = ScanSchedule.for_video(every=3, fps=25.0, fixed=False)
    assert (schedule.keyframe, schedule.full_keyframe) == (25, 100)
    assert schedule.scan(_frame(7), []) == "full"  # the first frame of a run, wherever it starts
    assert [schedule.scan(_frame(t), []) for t in (8, 9, 10)] == [None, "full", None]  # looking: every 3rd
    followed = [_face()]
    assert [schedule.scan(_frame(t), followed) for t in (11, 12, 24)] == [None, None, None]
    assert schedule.scan(_frame(25), followed) == "coarse"  # a keyframe for faces that enter
    assert schedule.scan(_frame(100), followed) == "full"
    assert schedule.scan(_frame(102), [_face(carried=1)]) == "full"  # a face not confirmed: look every 3rd
    assert schedule.scan(_frame(103), [_face(carried=2)]) is None
    assert schedule.scan(_frame(104, value=240), followed) == "full"  # a new shot


def test_a_fixed_schedule_scans_every_nth_frame_only():
    schedule = ScanSchedule.for_video(every=4, fps=25.0, fixed=True)
    assert [schedule.scan(_frame(t), []) for t in range(9)] == ["full", None, None, None, "full", None, None,
                                                                None, "full"]
    assert schedule.scan(_frame(5, value=250), [_face()]) is None  # no cut detection either


def test_the_talking_face_is_followed_with_few_scans(monkeypatch):
    from ftcn.faces import scan

    scans = []
    original = scan._faces_of

    def counting(frame, backend, scan, previous):
        scans.append(scan)
        return original(frame, backend, scan, previous)

    monkeypatch.setattr(scan, "_faces_of", counting)
    backend = make_backend("dlib")
    found = scan.scan_faces(TALKING_FACE, backend)
    assert all(len(faces) >= 1 for faces in found.faces)
    budget = math.ceil(len(found.faces) / found.detect_every)  # scans at the fixed interval
    full = scans.count("full")
    assert 1 <= full < budget / 4, (full, budget)


def test_a_face_entering_while_another_is_followed_is_found_by_the_next_keyframe(tmp_path):
    """Following skips full scans, so a newcomer must wait for a keyframe; the schedule promises the coarse one's
    interval for a face the coarse scan sees."""
    from ftcn.faces.tracking import boxes_at, iou, link_faces
    from ftcn.faces.scan import KEYFRAME_S, scan_faces
    from ftcn.synth.scenes import OtherFace, SceneSpec, render_scene, write_scene

    fps, enters = 25.0, 27
    spec = SceneSpec(face_px=150, crf=23, frames=64, size=(640, 360), fps=fps, seed=5, centre=(0.25, 0.5),
                     others=(OtherFace(120, (0.75, 0.5), (enters, 64)),))
    scene = render_scene(spec)
    assert [len(scene.boxes[enters - 1]), len(scene.boxes[enters])] == [1, 2]
    backend = make_backend("dlib")
    found = scan_faces(write_scene(tmp_path / "newcomer.mp4", scene), backend)
    tracks = link_faces(found.faces, backend.tracker_config)
    held = [t for t in range(enters, spec.frames) if any(iou(box, scene.boxes[t][-1]) >= 0.3
                                                         for box in boxes_at(tracks, t))]
    assert held, "the newcomer was never found"
    assert held[0] - enters <= round(KEYFRAME_S * fps), held[0]
    assert held == list(range(held[0], spec.frames)), "the newcomer was lost once found"


def test_the_speed_guard_counts_verdicts_and_auc_against_the_reference():
    """bench/bench_one_pass.py's rule: AUC >= the reference's - 0.01 and verdicts equal on >= 98 % of videos."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_one_pass import AGREEMENT, AUC_DROP, judge

    fake = [False] * 25 + [True] * 25
    reference = [0.1 + 0.01 * i for i in range(25)] + [0.6 + 0.01 * i for i in range(25)]
    one_flip = list(reference)
    one_flip[0] = 0.65  # one real video now above the threshold (98 % equal) and above one fake (AUC -0.0016)
    two_flips = list(one_flip)
    two_flips[1] = 0.56  # 96 % equal
    model = {"fake": fake, "threshold": 0.5, "modes": {
        name: {"scores": scores, "clips": 1, "looked_again": 0, "seconds": 0.0}
        for name, scores in (("reference", reference), ("one flip", one_flip), ("two flips", two_flips),
                             ("no face", [None] + reference[1:]))}}
    judged = judge(model)
    assert judged["reference"]["holds"] and judged["reference"]["agreement"] == 1.0
    assert judged["one flip"]["verdicts_changed"] == 1 and judged["one flip"]["agreement"] >= AGREEMENT
    assert -AUC_DROP <= judged["one flip"]["auc_change"] < 0 and judged["one flip"]["holds"]
    assert judged["two flips"]["verdicts_changed"] == 2 and not judged["two flips"]["holds"]
    assert judged["no face"]["verdicts_changed"] == 1  # no score is a verdict of its own
