"""Which tracks are judged: length and how much of the face is inside the frame."""

from __future__ import annotations

import numpy as np

from ftcn.faces.types import Track
from ftcn.predict.judging import JudgingRules, inside_share, unjudged_reasons


def track(length: int, box: tuple[float, float, float, float]) -> Track:
    return Track(start=0, end=length, detection_index=[0] * length, boxes=np.tile(np.array(box, float), (length, 1)),
                 points5=np.zeros((length, 5, 2)), scores=np.ones(length))


def test_inside_share() -> None:
    shares = inside_share(np.array([[10, 10, 50, 50], [-30, 0, 10, 40], [90, 90, 110, 110]], float), (100, 100))
    assert np.allclose(shares, [1.0, 0.25, 0.25])


def test_short_and_outside_tracks_are_not_judged() -> None:
    tracks = [track(40, (10, 10, 50, 50)), track(6, (10, 10, 50, 50)), track(40, (-30, 0, 10, 40)),
              track(16, (10, 10, 50, 50))]
    reasons = unjudged_reasons(tracks, (100, 100), clip_len=32)
    assert reasons[0] is None and reasons[3] is None  # 16 frames: half the official clip
    assert "too short" in reasons[1] and "6 frames, at least 16" in reasons[1]
    assert "inside the frame" in reasons[2]
    assert unjudged_reasons(tracks[1:2], (100, 100), clip_len=32, rules=JudgingRules(min_frames=4)) == [None]
