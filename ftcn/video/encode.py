"""H.264/MP4 writing with PyAV (libx264, yuv420p, faststart): plays in every browser, unlike OpenCV's writers."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np


class VideoWriter:
    """Write RGB frames to an MP4 atomically: frames go to ``<name>.partial.mp4``, renamed on a clean close.

    Odd frame sizes are padded by one black row/column (yuv420p needs even sizes).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 23,
                 preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.partial = self.path.with_name(self.path.name + ".partial.mp4")
        self.container = av.open(str(self.partial), mode="w", options={"movflags": "faststart"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(round(fps * 1000), 1000))
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": preset}

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame of {rgb.shape[1]}x{rgb.shape[0]}, writer expects {self.width}x{self.height}")
        if (self.stream.width, self.stream.height) != (self.width, self.height):
            padded = np.zeros((self.stream.height, self.stream.width, 3), dtype=np.uint8)
            padded[: self.height, : self.width] = rgb
            rgb = padded
        # OpenCV's BT.601 conversion (video range, as swscale's default): 0.3 ms for 854x508, swscale's 1.5 ms
        yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
            self.container.mux(packet)

    def close(self) -> Path:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.partial.replace(self.path)
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        if exc_type is None:
            self.close()
        else:
            self.container.close()
            self.partial.unlink(missing_ok=True)


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Convenience for small in-memory clips (tests, synthetic data)."""
    height, width = frames[0].shape[:2]
    with VideoWriter(path, width, height, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
