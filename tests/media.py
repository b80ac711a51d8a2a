"""Real videos made in the tests (PyAV), from the sample media copied into tests/fixtures/media."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ftcn.synth.generate import media_dir
from ftcn.video.encode import write_video

MEDIA = media_dir()  # the sample media ship inside the package (ftcn synth uses them)
TALKING_FACE = MEDIA / "carphone_pristine.mp4"
FACE_PHOTO = MEDIA / "astronaut.png"


def face_photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FACE_PHOTO)), cv2.COLOR_BGR2RGB)


def two_faces_video(path: Path, frames: int = 20) -> Path:
    """Two copies of the photo's face side by side, drifting slowly in opposite directions."""
    photo = face_photo()
    crop = photo[0:256, 96:352]
    out = []
    for t in range(frames):
        canvas = np.full((288, 576, 3), 90, dtype=np.uint8)
        canvas[16:272, 16 + t : 272 + t] = crop
        canvas[16:272, 304 - t : 560 - t] = crop
        out.append(canvas)
    return write_video(path, out, fps=25)


def no_face_video(path: Path, frames: int = 12) -> Path:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:120, 0:160]
    out = [((np.stack([x + t, y, x + y], -1) * 2 + rng.integers(0, 8, (120, 160, 3))) % 256).astype(np.uint8)
           for t in range(frames)]
    return write_video(path, out, fps=25)


def left_band_video(path: Path, frames: int = 6) -> Path:
    """64x32 frames with a white band on the left: a direction marker for rotation tests."""
    frame = np.zeros((32, 64, 3), dtype=np.uint8)
    frame[:, :10] = 255
    return write_video(path, [frame] * frames, fps=25)


def rotate_90_clockwise_on_display(path: Path) -> Path:
    """Patch the MP4 track header matrix so players show the video rotated 90 degrees clockwise."""
    data = bytearray(path.read_bytes())
    identity = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    at = data.find(identity, data.find(b"tkhd"))
    assert at > 0, "no identity matrix in tkhd"
    data[at : at + 36] = struct.pack(">9I", 0, 0x00010000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def variable_rate_video(path: Path, times_s: list[float]) -> Path:
    """Frames at the given presentation times (variable frame rate), each a different grey level."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_s):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, dtype=np.uint8), format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def group_pan_video(path: Path, frames: int = 90, px_per_frame: float = 4.0, hidden: tuple[int, ...] = ()) -> Path:
    """A camera panning across the synthetic group photo: faces enter and leave the frame. ``hidden`` frames are
    blurred beyond detection, so tracks have gaps to bridge (or end there)."""
    from ftcn.synth.generate import FRAME_SIZE, _group_photo

    photo = _group_photo()
    width, height = FRAME_SIZE
    out = []
    for t in range(frames):
        x = min(photo.shape[1] - width, t * px_per_frame)
        frame = cv2.warpAffine(photo, np.float32([[1, 0, -x], [0, 1, 0]]), (width, height), flags=cv2.INTER_LINEAR)
        out.append(cv2.GaussianBlur(frame, (0, 0), 6) if t in hidden else frame)
    return write_video(path, out, fps=25)
