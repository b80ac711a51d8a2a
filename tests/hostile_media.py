"""Hostile media, made here: what a stranger may upload to hurt a decoder (see ``ftcn.video.cage``).

Each maker writes one file and returns its path; ``CORPUS`` maps a name to (maker, the error code a job on it must
fail with). Nothing is downloaded: every file is built from the sample video or from frames drawn here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from tests.media import FACE_PHOTO, TALKING_FACE


def _encoded(path: Path, frames: int = 30, size: tuple[int, int] = (176, 144), codec: str = "libx264",
             rate: int = 30) -> Path:
    """A small real video in the container ``path``'s suffix names."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            image = np.full((height, width, 3), (index * 7) % 255, dtype=np.uint8)
            image[:, : width // 2] = 255 - image[:, : width // 2]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def truncated_mp4(folder: Path) -> Path:
    data = TALKING_FACE.read_bytes()
    path = folder / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])  # the index (moov) is at the end: a third of the file has none
    return path


def _sample_in(path: Path, codec: str) -> Path:
    """The sample video (120 frames) encoded again into ``path``'s container."""
    from ftcn.video.decode import iter_frames

    frames = [frame.rgb for frame in iter_frames(TALKING_FACE)]
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return path


def _flipped(source: Path, path: Path, seed: int, skip: int = 2048, every: int = 2000) -> Path:
    """One bit in every ``every`` bytes flipped, past the first ``skip`` bytes. With the defaults the headers
    mostly stand and the damage is in the H.264 pictures, where the decoder detects it (``err_detect=explode``).
    VP8/VP9 decoders do not check their pictures: a flip there decodes to a damaged picture unnoticed (measured:
    2 of 3 seeds), so the WebM's damage is spread over the whole file, its headers and cluster structure too."""
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(seed)
    for offset in rng.integers(skip, len(data), size=len(data) // every):
        data[offset] ^= 1 << int(rng.integers(0, 8))
    path.write_bytes(bytes(data))
    return path


def flipped_mp4(folder: Path) -> Path:
    return _flipped(TALKING_FACE, folder / "flipped.mp4", 1)


def flipped_mkv(folder: Path) -> Path:
    return _flipped(_sample_in(folder / "clean.mkv", "libx264"), folder / "flipped.mkv", 2)


def flipped_webm(folder: Path) -> Path:
    return _flipped(_sample_in(folder / "clean.webm", "libvpx"), folder / "flipped.webm", 3, skip=64, every=200)


def huge_frame_size(folder: Path) -> Path:
    """A stream that declares 4096 x 4096 frames (over the 3840 x 2160 bound)."""
    return _encoded(folder / "huge.mp4", frames=2, size=(4096, 4096))


def millions_of_tiny_frames(folder: Path) -> Path:
    """40,000 frames of 16 x 16 pixels in a few hundred kB (one JPEG packet muxed again and again): over the frame
    bound however short it plays."""
    path = folder / "tiny_frames.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=240)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuvj420p"
        packets = list(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        packets += list(stream.encode())
        packet = packets[0]
        for index in range(40_000):
            packet.pts = packet.dts = index
            out.mux(packet)
    return path


def endless_stream(folder: Path) -> Path:
    """An MPEG transport stream (no length in any header) whose timestamps run on past the duration bound: one
    frame a second for 700 s."""
    path = folder / "endless.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(700):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index % 255, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def decoding_bomb(folder: Path) -> Path:
    """A small file that decodes to big frames: 3840 x 2160, solid colour, many of them (what a zip bomb is to
    an archive). Within the bounds, so it is decoded, by a decoder that has only its memory and CPU limits."""
    return _encoded(folder / "bomb.mkv", frames=90, size=(3840, 2160))


def photo_named_mp4(folder: Path) -> Path:
    path = folder / "photo.mp4"
    path.write_bytes(FACE_PHOTO.read_bytes())
    return path


def hls_playlist(folder: Path) -> Path:
    """An HLS playlist (named .mp4) whose segments are local files: the decoder must not open them."""
    path = folder / "playlist.mp4"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4.0,\nfile://{TALKING_FACE}\n"
                    "#EXTINF:4.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    return path


def concat_list(folder: Path) -> Path:
    """An ffconcat script (named .mp4) naming local files."""
    path = folder / "concat.mp4"
    path.write_text(f"ffconcat version 1.0\nfile '{TALKING_FACE}'\nfile '/etc/passwd'\n")
    return path


CORPUS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated mp4": (truncated_mp4, "invalid-video"),
    "bit-flipped mp4": (flipped_mp4, "invalid-video"),
    "bit-flipped mkv": (flipped_mkv, "invalid-video"),
    "bit-flipped webm": (flipped_webm, "invalid-video"),
    "huge frame size": (huge_frame_size, "video-too-large"),
    "millions of tiny frames": (millions_of_tiny_frames, "video-too-large"),
    "endless stream": (endless_stream, "video-too-large"),
    "photo named mp4": (photo_named_mp4, "not-a-video"),
    "hls playlist": (hls_playlist, "invalid-video"),
    "concat list": (concat_list, "invalid-video"),
    "decoding bomb": (decoding_bomb, "invalid-video"),  # with the decoder's memory at 512 MB
}
