"""Video bombs are refused from what the container declares, before a single frame is decoded."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import ftcn.video.decode as decode
from ftcn.video.decode import VideoLimits, VideoTooLarge, iter_frames, probe


def write_video(path: Path, width: int = 64, height: int = 48, frames: int = 3, rate: int | Fraction = 30,
                streams: int = 1, pts_step: int = 1, codec: str = "libx264") -> Path:
    with av.open(str(path), "w") as out:
        outs = []
        for _ in range(streams):
            stream = out.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if pts_step != 1:
                stream.time_base = Fraction(1, 1)
            outs.append(stream)
        for index in range(frames):
            image = np.full((height, width, 3), (index * 40) % 255, dtype=np.uint8)
            for stream in outs:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                if pts_step != 1:
                    frame.pts, frame.time_base = index * pts_step, Fraction(1, 1)
                out.mux(stream.encode(frame))
        for stream in outs:
            out.mux(stream.encode())
    return path


BOMBS = {
    "extreme resolution": (dict(width=4096, height=4096, frames=1), VideoLimits(), "pixels"),
    "extreme duration": (dict(frames=3, rate=1, pts_step=2000), VideoLimits(), "longer than the limit"),
    "huge frame count": (dict(frames=40), VideoLimits(max_frames=25), "frames exceed the limit"),
    "absurd fps": (dict(frames=3, rate=10_000), VideoLimits(), "frames per second"),
    "many streams": (dict(frames=1, streams=12, width=16, height=16), VideoLimits(), "streams exceed"),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_bombs_are_refused_before_decoding(tmp_path: Path, bomb: str, monkeypatch) -> None:
    options, limits, message = BOMBS[bomb]
    path = write_video(tmp_path / "bomb.mp4", **options)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a frame was decoded before the container was checked")

    monkeypatch.setattr(decode, "_decoded", no_decoding)
    with pytest.raises(VideoTooLarge, match=message):
        probe(path, limits)
    with pytest.raises(VideoTooLarge, match=message):
        next(iter_frames(path, limits))


def test_an_ordinary_video_passes_the_same_checks(tmp_path: Path) -> None:
    path = write_video(tmp_path / "fine.mp4", frames=5)
    assert probe(path).width == 64 and len(list(iter_frames(path))) == 5
