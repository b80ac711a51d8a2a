"""Streaming video decoding with PyAV: one RGB frame at a time, display rotation applied, bounded.

Frames are yielded one by one and never collected here, so memory does not grow with the video's length. Frame
times come from each frame's own timestamp (variable frame rate videos are common from phones and screen
recorders); ``fps`` is only the stream's average rate, reported for information.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import av

from ftcn.errors import InvalidVideo, NotAVideo, VideoTooLarge
from ftcn.video.cage import caged_frames, caged_probe
from ftcn.video.pixels import scaled, to_rgb
from ftcn.video.types import Frame, VideoInfo, VideoLimits

__all__ = ["Frame", "VideoInfo", "VideoLimits", "probe", "iter_frames", "decoded_frames", "scaled"]


#: A video whose frames run out before this share of what its header announces (duration x rate) is damaged (cut
#: short, or corrupted so that most frames do not decode): a verdict on the few left would be on a fragment.
DAMAGED_SHARE, MIN_EXPECTED = 0.5, 10

#: The only demuxers FFmpeg may use (its names): the video containers uploads come in, and the still-image ones,
#: so that a photo is refused as one. Playlists and concatenation (HLS, ``concat``), which open other files or
#: URLs named inside the file, are not among them, and only the ``file`` protocol may be opened.
VIDEO_FORMATS = ("mov", "matroska", "avi", "mpeg", "mpegts", "m4v", "h264", "hevc", "flv", "asf", "ogg")


def _open(path: str | Path, limits: VideoLimits) -> av.container.InputContainer:
    """Open the container and check what its headers declare against ``limits`` before anything is decoded."""
    path = Path(path)
    if not path.is_file():
        raise InvalidVideo(f"video not found: {path.name}")
    try:
        container = av.open(str(path), mode="r", options={
            "format_whitelist": ",".join((*VIDEO_FORMATS, *sorted(IMAGE_FORMATS))), "protocol_whitelist": "file"})
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidVideo(f"{path.name} is not a readable video ({exc})") from None
    try:
        if not container.streams.video:
            raise InvalidVideo(f"{path.name} has no video stream")
        _check_container(container, limits, path.name)
    except InvalidVideo:
        container.close()
        raise
    return container


def _check_container(container: av.container.InputContainer, limits: VideoLimits, name: str) -> None:
    """Refuse bombs from the container's own declarations: stream count, frame size, frame rate, length."""
    if len(container.streams) > limits.max_streams:
        raise VideoTooLarge(f"{name}: {len(container.streams)} streams exceed the limit of {limits.max_streams}")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    declared = _info(container, None)
    if declared.fps > limits.max_fps:
        raise VideoTooLarge(f"{name}: {declared.fps:.0f} frames per second exceed the limit of {limits.max_fps:.0f}")
    _check_bounds(declared, limits, name)
    if width * height == 0:
        raise InvalidVideo(f"{name}: the video stream declares no frame size")


def _info(container: av.container.InputContainer, first: av.VideoFrame | None) -> VideoInfo:
    stream = container.streams.video[0]
    rotation = int(round(first.rotation / 90.0)) * 90 % 360 if first is not None else 0
    width = first.width if first is not None else stream.codec_context.width
    height = first.height if first is not None else stream.codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        width=int(width),
        height=int(height),
        fps=float(rate) if rate else 0.0,
        duration_s=duration,
        frame_count=int(stream.frames) if stream.frames else None,
        codec=stream.codec_context.name,
        rotation=rotation,
    )


def _check_bounds(info: VideoInfo, limits: VideoLimits, name: str) -> None:
    if info.width * info.height > limits.max_pixels:
        raise VideoTooLarge(f"{name}: frames of {info.width}x{info.height} exceed the limit of {limits.max_pixels} pixels")
    if info.duration_s is not None and info.duration_s > limits.max_duration_s:
        raise VideoTooLarge(f"{name}: {info.duration_s:.1f} s is longer than the limit of {limits.max_duration_s:.0f} s")
    if info.frame_count is not None and info.frame_count > limits.max_frames:
        raise VideoTooLarge(f"{name}: {info.frame_count} frames exceed the limit of {limits.max_frames}")


def _decoded(container: av.container.InputContainer, name: str) -> Iterator[av.VideoFrame]:
    """Decoded frames; a damaged picture stops decoding (FFmpeg's ``err_detect=explode``) instead of being hidden
    by error concealment: a verdict on pictures the decoder made up would be on made-up pictures."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.options = {"err_detect": "explode"}
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            yield frame
    except av.error.FFmpegError as exc:
        raise InvalidVideo(f"{name} is damaged: decoding failed after {count} frames ({exc})") from None


#: Container formats that hold still images (FFmpeg's names); an animated GIF or WebP with many frames is a video.
IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "gif", "gif_pipe",
                 "j2k_pipe", "jpegxl_pipe", "qoi_pipe", "pgm_pipe", "ppm_pipe", "svg_pipe"}
NOT_A_VIDEO = "FTCN judges how a face moves over time, and nothing moves in it"


def probe(path: str | Path, limits: VideoLimits | None = None) -> VideoInfo:
    """Container facts, checked against ``limits``; decodes two frames to prove the stream is readable and moves.

    A still image (in an image container, or a video of a single frame) raises :class:`NotAVideo`: a verdict on it
    would be a verdict on nothing. With ``limits.cage``, all of it happens in the caged child (``ftcn.video.cage``).
    """
    limits = limits or VideoLimits()
    if limits.cage is not None:
        return caged_probe(path, limits)
    name = Path(path).name
    with _open(path, limits) as container:
        frames = _decoded(container, name)
        first = next(frames, None)
        if first is None:
            raise InvalidVideo(f"{name}: no decodable video frame")
        info = _info(container, first)
        if next(frames, None) is None:
            still = "a still image" if container.format.name in IMAGE_FORMATS else "a video of a single frame"
            raise NotAVideo(f"{name} is {still}, not a video: {NOT_A_VIDEO}")
    _check_bounds(info, limits, name)
    return info


def iter_frames(
    path: str | Path, limits: VideoLimits | None = None, max_frames: int | None = None, scale: float = 1.0,
    start_frame: int = 0,
) -> Iterator[Frame]:
    """Yield displayed RGB frames in order; raises :class:`InvalidVideo` / :class:`VideoTooLarge` as it finds out.

    Bounds are re-checked while decoding, because container headers can lie about duration and frame count.
    ``scale`` < 1 gives smaller frames (each side :func:`scaled`), cheaper than resizing full ones.
    ``start_frame``: frames before it are decoded (to count them exactly, whatever the container's timestamps
    say) but not converted or yielded; indices stay the video's own. ``max_frames`` counts from the video's start.
    """
    limits = limits or VideoLimits()
    if limits.cage is not None:
        yield from caged_frames(path, limits, max_frames, scale, start_frame)
        return
    with closing(decoded_frames(path, limits, max_frames, start_frame)) as frames:
        for index, time_s, frame, rotation in frames:
            yield Frame(index=index, time_s=time_s, rgb=to_rgb(frame, rotation, scale), scale=scale)


def decoded_frames(path: str | Path, limits: VideoLimits, max_frames: int | None = None, start_frame: int = 0
                   ) -> Iterator[tuple[int, float, av.VideoFrame, int]]:
    """:func:`iter_frames` before conversion, in this process: (index, time in s, FFmpeg's frame, its display
    rotation), for the caged decoder, which ships frames as it finds them (``ftcn.video.child``)."""
    name = Path(path).name
    with _open(path, limits) as container:
        rotation = None
        start_time = None
        count = 0
        for frame in _decoded(container, name):
            if rotation is None:
                info = _info(container, frame)
                _check_bounds(info, limits, name)
                rotation = info.rotation
            time_s = float(frame.time) if frame.time is not None else count / 30.0
            start_time = time_s if start_time is None else start_time
            if count >= limits.max_frames:
                raise VideoTooLarge(f"{name}: more than {limits.max_frames} frames")
            if time_s - start_time > limits.max_duration_s:
                raise VideoTooLarge(f"{name}: longer than the limit of {limits.max_duration_s:.0f} s")
            if count >= start_frame:
                yield count, time_s - start_time, frame, rotation
            count += 1
            if max_frames is not None and count >= max_frames:
                return
        if count == 0:
            raise InvalidVideo(f"{name}: no decodable video frame")
        expected = round((info.duration_s or 0.0) * info.fps)
        if expected >= MIN_EXPECTED and count < DAMAGED_SHARE * expected:
            raise InvalidVideo(f"{name} is damaged: only {count} of the {expected} frames its header announces "
                               "could be decoded")
