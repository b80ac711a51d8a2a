"""Tracking, padding and clip windows on hand-made detections (edge cases the fixtures do not cover)."""

from __future__ import annotations

import numpy as np
import pytest

from ftcn.faces.clips import clip_windows, padded_positions
from ftcn.faces.tracking import TrackerConfig, TrackingMode, link_faces, link_official
from ftcn.faces.types import Face, Track


def face(x: float, y: float, size: float = 40.0, score: float = 0.99) -> Face:
    box = np.array([x, y, x + size, y + size], dtype=np.float64)
    points = np.array([[x + 0.3 * size, y + 0.35 * size], [x + 0.7 * size, y + 0.35 * size],
                       [x + 0.5 * size, y + 0.55 * size], [x + 0.35 * size, y + 0.75 * size],
                       [x + 0.65 * size, y + 0.75 * size]])
    return Face(box=box, score=score, points5=points)


def test_face_that_leaves_briefly_is_one_track_with_a_bridged_gap() -> None:
    frames = [[face(100 + t, 50)] for t in range(10)] + [[] for _ in range(3)] + [[face(113 + t, 50)]
                                                                                   for t in range(10)]
    tracks = link_faces(frames, TrackerConfig(max_gap=5))
    assert len(tracks) == 1
    track = tracks[0]
    assert (track.start, track.end) == (0, 23)
    assert track.detection_index[10:13] == [-1, -1, -1]
    np.testing.assert_allclose(track.boxes[11, 0], 111.0)  # interpolated between frame 9 (109) and 13 (113)


def test_a_box_that_jumps_in_size_before_a_gap_stays_one_track() -> None:
    """dlib's box for one face jumps between pyramid levels (44 px, then 36 px a frame later). Extrapolating that
    shrink across a 2-frame gap once predicted a sliver, and the face came back as a second track."""
    frames = [[face(100 - 5 * t, 60, size=44)] for t in range(8)]
    frames.append([face(100 - 5 * 8 + 4, 64, size=36)])  # the same face, a smaller box
    frames += [[], []]
    frames += [[face(100 - 5 * t, 60, size=44)] for t in range(11, 20)]
    tracks = link_faces(frames, TrackerConfig(max_gap=5))
    assert [(t.start, t.end) for t in tracks] == [(0, 20)]
    assert tracks[0].detection_index[9:11] == [-1, -1]


def test_face_that_leaves_for_long_comes_back_as_a_new_track() -> None:
    frames = [[face(100, 50)] for _ in range(10)] + [[] for _ in range(20)] + [[face(100, 50)] for _ in range(10)]
    tracks = link_faces(frames, TrackerConfig(max_gap=5))
    assert [(t.start, t.end) for t in tracks] == [(0, 10), (30, 40)]


def test_two_faces_crossing_keep_their_identities() -> None:
    frames = []
    for t in range(30):
        a, b = face(20 + 8 * t, 100), face(260 - 8 * t, 104)
        frames.append(sorted([a, b], key=lambda f: f.box[0]))  # detector order changes as they cross
    tracks = link_faces(frames)
    assert len(tracks) == 2
    starts = sorted(tracks, key=lambda tr: tr.boxes[0][0])
    left_to_right, right_to_left = starts
    assert np.all(np.diff(left_to_right.boxes[:, 0]) > 0), "the left face must keep moving right"
    assert np.all(np.diff(right_to_left.boxes[:, 0]) < 0), "the right face must keep moving left"


def test_one_frame_detection_is_dropped_by_default_and_usable_when_kept() -> None:
    frames = [[] for _ in range(5)]
    frames[2] = [face(10, 10)]
    assert link_faces(frames) == []
    kept = link_faces(frames, TrackerConfig(min_track_frames=1))
    assert [(t.start, t.end) for t in kept] == [(2, 3)]
    windows = clip_windows(kept[0], 0, clip_len=32, stride=1)
    assert len(windows) == 1 + 31 and all(len(w.frames) == 32 and set(w.frames) == {2} for w in windows)


def test_faces_entering_later_are_followed() -> None:
    frames = [[face(10 + t, 10)] for t in range(20)]
    for t in range(8, 20):
        frames[t] = frames[t] + [face(200, 40 + t)]
    tracks = link_faces(frames)
    assert [(t.start, t.end) for t in tracks] == [(0, 20), (8, 20)]
    # the official linking only follows faces present in the first frame
    mode, official_tracks = link_official(frames)
    assert mode is TrackingMode.FULL_LENGTH and len(official_tracks) == 1


def test_low_scores_do_not_start_tracks() -> None:
    frames = [[face(10, 10, score=0.6)] for _ in range(10)]
    assert link_faces(frames) == []


def test_no_faces_at_all() -> None:
    assert link_faces([[] for _ in range(5)]) == []
    assert link_official([[] for _ in range(5)]) == (TrackingMode.LONGEST_SEGMENTS, [])
    assert link_official([]) == (TrackingMode.LONGEST_SEGMENTS, [])


@pytest.mark.parametrize("length", list(range(1, 40)))
def test_padding_never_fails_and_covers_the_track(length: int) -> None:
    positions = padded_positions(length, 32)
    assert len(positions) >= 32 and set(positions) == set(range(length))
    assert positions[31 : 31 + length] == list(range(length)) or length >= 32
    track = Track(0, length, [0] * length, np.zeros((length, 4)), np.zeros((length, 5, 2)), np.ones(length))
    for stride in (1, 5, 16):
        windows = clip_windows(track, 0, 32, stride)
        covered = set(np.concatenate([w.frames for w in windows]).tolist())
        assert covered == set(range(length)), f"stride {stride} leaves frames without a clip"
