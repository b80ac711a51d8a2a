"""Streaming decode: rotation, variable frame rate, bounds and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftcn.video.decode import InvalidVideo, VideoLimits, VideoTooLarge, iter_frames, probe
from tests.media import TALKING_FACE, left_band_video, rotate_90_clockwise_on_display, variable_rate_video


def test_sample_video_facts() -> None:
    info = probe(TALKING_FACE)
    frames = list(iter_frames(TALKING_FACE))
    assert (info.width, info.height) == frames[0].rgb.shape[1::-1]
    assert info.frame_count == len(frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[-1].time_s == pytest.approx((len(frames) - 1) / info.fps, abs=1e-3)


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    path = rotate_90_clockwise_on_display(left_band_video(tmp_path / "rot.mp4"))
    info = probe(path)
    frame = next(iter_frames(path)).rgb
    assert (info.width, info.height) == (32, 64) and frame.shape[:2] == (64, 32)
    # turned clockwise, the band that was on the left is now on top
    assert frame[:8].mean() > 200 and frame[-40:].mean() < 30


def test_variable_frame_rate_uses_timestamps(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.08, 0.5, 0.54, 1.5]
    path = variable_rate_video(tmp_path / "vfr.mp4", times)
    got = [f.time_s for f in iter_frames(path)]
    np.testing.assert_allclose(got, times, atol=2e-3)


def test_bounds(tmp_path: Path) -> None:
    with pytest.raises(VideoTooLarge, match="exceed the limit of 100|more than 100 frames"):
        list(iter_frames(TALKING_FACE, VideoLimits(max_frames=100)))
    with pytest.raises(VideoTooLarge, match="longer than"):
        probe(TALKING_FACE, VideoLimits(max_duration_s=2.0))
    with pytest.raises(VideoTooLarge, match="pixels"):
        probe(TALKING_FACE, VideoLimits(max_pixels=100 * 100))
    assert len(list(iter_frames(TALKING_FACE, max_frames=7))) == 7


def test_broken_files_are_clear_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(InvalidVideo, match="notes.mp4"):
        probe(text)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(TALKING_FACE.read_bytes()[:3000])
    with pytest.raises(InvalidVideo):
        list(iter_frames(truncated))
    with pytest.raises(InvalidVideo, match="not found"):
        probe(tmp_path / "missing.mp4")
