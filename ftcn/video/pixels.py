"""Decoded frames to RGB arrays: OpenCV for the common frame, swscale (PyAV) for every other.

Why two ways: most videos are 8-bit 4:2:0 in BT.601's video range (or untagged, which swscale reads as BT.601
too), and OpenCV converts such a 720p frame in 0.3 ms where swscale takes 0.8 ms (0.9 ms against 1.75 ms when it
is also shrunk to 854x480). A 60-s 720p video has 1800 frames, decoded once for the faces and again for the
annotated video. The two conversions differ by at most 3 levels (rounding, chroma interpolation). Any other frame
(4:4:4, 10-bit, BT.709, full range, odd sides) keeps swscale, which reads its colour tags.

OpenCV is imported only where a frame is converted by it: the caged decoder (``ftcn.video.child``) ships such a
frame's planes as they are (half the bytes of RGB) and never loads OpenCV, whose 326 MB of address space would
count against the cage's memory limit.
"""

from __future__ import annotations

import av
import numpy as np

#: FFmpeg's colour tags (AVColorSpace, AVColorRange) under which a yuv420p frame is what OpenCV's I420 conversion
#: assumes: BT.601 in video range.
BT601_SPACES = (2, 5, 6)  # unspecified, BT470BG, SMPTE170M
VIDEO_RANGES = (0, 1)  # unspecified, MPEG (limited)


def scaled(pixels: int, scale: float) -> int:
    """A frame side after scaling: even (what yuv420p encoders need), at least 2."""
    return max(2, int(round(pixels * scale / 2)) * 2)


def i420_planes(frame: av.VideoFrame) -> np.ndarray | None:
    """The frame's Y, U and V planes stacked as one ``[H * 3/2, W]`` array when OpenCV converts it as swscale
    would, else None."""
    if (frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2
            or frame.colorspace not in BT601_SPACES or frame.color_range not in VIDEO_RANGES):
        return None
    return frame.to_ndarray()


def rgb_from_i420(planes: np.ndarray, rotation: int = 0, scale: float = 1.0) -> np.ndarray:
    """RGB of :func:`i420_planes`' array, shrunk by ``scale`` (whole factors by pixel areas, exact and fast in
    OpenCV, then bilinear for the rest: OpenCV's areas at other ratios cost more than swscale's), then turned."""
    import cv2  # here, not at the top: see the module's doc

    rgb = cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
    if scale != 1.0:
        height, width = rgb.shape[:2]
        whole = int(1 / scale)
        if whole >= 2:
            rgb = cv2.resize(rgb, (width // whole, height // whole), interpolation=cv2.INTER_AREA)
        rgb = cv2.resize(rgb, (scaled(width, scale), scaled(height, scale)), interpolation=cv2.INTER_LINEAR)
    return rotated(rgb, rotation)


def swscale_rgb(frame: av.VideoFrame, rotation: int = 0, scale: float = 1.0) -> np.ndarray:
    """RGB by swscale, any pixel format; one call converts and shrinks (the frame is stored before its turn)."""
    if scale == 1.0:
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(format="rgb24", width=scaled(frame.width, scale), height=scaled(frame.height, scale),
                               interpolation="AREA")
    return rotated(rgb, rotation)


def to_rgb(frame: av.VideoFrame, rotation: int = 0, scale: float = 1.0) -> np.ndarray:
    """The displayed RGB frame, by whichever of the two ways fits it."""
    planes = i420_planes(frame)
    return swscale_rgb(frame, rotation, scale) if planes is None else rgb_from_i420(planes, rotation, scale)


def rotated(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """PyAV reports the counter-clockwise rotation the display matrix applies; np.rot90 turns counter-clockwise."""
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90)) if rotation else rgb
