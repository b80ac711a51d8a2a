"""Decoding untrusted videos in a cage: a child process with no secrets, bounded memory and CPU, and no network.

Every input is a file from a stranger, and media parsers are the most attacked code a service runs. With a
:class:`Cage` in :class:`ftcn.video.decode.VideoLimits`, :func:`ftcn.video.decode.probe` and
:func:`~ftcn.video.decode.iter_frames` run the same decoding code in a child (``python -m ftcn.video.child``):

- its environment is rebuilt from nothing (``PATH``, ``LANG`` and where to import ``ftcn`` from), so no
  ``FTCN_*`` setting, database URL or storage credential is in it, and it is a new interpreter (not a fork), so
  none is in its memory either;
- before it opens the file it limits its own address space (``memory_mb``), CPU time (``cpu_s``), open files,
  file writes and core dumps, sets ``no_new_privs``, and leaves the network: a new, empty network namespace
  (``unshare(CLONE_NEWNET)``; as root directly, otherwise inside a new user namespace where the kernel allows
  one). Where neither is allowed (or off Linux) the decoder keeps the network and says so (``Cage.isolation``);
- frames come back over a pipe, read straight into the frame's array (one copy); a 4:2:0 BT.601 frame comes as
  its planes (half the bytes of RGB), made RGB here by OpenCV (``ftcn.video.pixels``): 2.86 s for a 60-s 720p
  video, where RGB from the child's swscale took 5.7 s;
- a child that dies (a decoder crash, the memory or CPU limit) or stalls for ``stall_s`` ends the decode with
  :class:`~ftcn.errors.InvalidVideo` and a reason in words; the calling process goes on.

The child's own errors (not a video, too large, unreadable) come back as the same exceptions as without a cage.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftcn import errors
from ftcn.video.pixels import rgb_from_i420
from ftcn.video.types import Frame, VideoInfo, VideoLimits

#: Record kinds on the child's stdout: info (JSON), frame (header + RGB pixels), I420 frame (header + planes, for
#: the parent to convert: ``ftcn.video.pixels``), error (JSON), done.
INFO, FRAME, I420, ERROR, DONE = b"I", b"F", b"Y", b"E", b"D"
FRAME_HEADER = struct.Struct("<qdiid")  # index, time_s, height, width, scale
I420_HEADER = struct.Struct("<qdiidi")  # index, time_s, coded height, coded width, scale, rotation
LENGTH = struct.Struct("<I")
#: Where the child imports ftcn from (the package's parent folder; not a secret).
IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Cage:
    memory_mb: int = 2048  # the child's address space (FTCN_DECODE_MEMORY_MB)
    cpu_s: int = 3600  # the child's CPU time (FTCN_DECODE_CPU_S)
    stall_s: float = 120.0  # longest wait for the child's next frame
    network: bool = False  # True: leave the child the network (only for tests that compare)


class Isolation:
    """What the last child reported about its cage (for logs and the README's statement)."""

    last: dict[str, Any] = {}


def _child_env() -> dict[str, str]:
    return {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONPATH": IMPORT_ROOT, "OMP_NUM_THREADS": "1"}


#: The pipe's capacity: a whole 720p frame fits (the default 64 kB made every frame 40 blocking round trips,
#: measured: 5.0 ms a 720p frame against 1.9 in-process).
PIPE_BYTES = 4 * 1024 * 1024
F_SETPIPE_SZ = 1031  # Linux's fcntl


def _start() -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-m", "ftcn.video.child"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env(), cwd="/",
                             bufsize=0, close_fds=True, start_new_session=True)
    for size in (PIPE_BYTES, 1024 * 1024):  # larger than /proc/sys/fs/pipe-max-size needs privilege
        try:
            fcntl.fcntl(child.stdout.fileno(), F_SETPIPE_SZ, size)
            break
        except OSError:
            continue
    return child


class _Spare:
    """One decoder started ahead, its imports done, waiting for a request on stdin: a decode then costs no
    interpreter start (0.12 s: a quarter of the cage's cost on a 4-s video). Each process keeps its own (a spare
    started before a fork belongs to the parent); it holds no request, no file and no secret until it gets one."""

    lock = threading.Lock()
    child: subprocess.Popen | None = None
    owner = 0

    @classmethod
    def take(cls) -> subprocess.Popen:
        with cls.lock:
            child = cls.child if cls.owner == os.getpid() and cls.child is not None and cls.child.poll() is None \
                else None
            cls.child, cls.owner = _start(), os.getpid()  # the next one starts while this one works
        return child or _start()


def _spawn(request: dict[str, Any]) -> subprocess.Popen:
    child = _Spare.take()
    child.stdin.write(json.dumps(request).encode() + b"\n")
    child.stdin.close()
    return child


def _died(child: subprocess.Popen, name: str, cage: Cage) -> errors.InvalidVideo:
    code = child.wait()
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        why = f"it used up its {cage.cpu_s} s of CPU time or was killed"
    elif code == -signal.SIGSEGV or code == -signal.SIGBUS or code == -signal.SIGABRT:
        why = "it crashed on the file"
    elif code < 0:
        why = f"it was stopped by signal {-code}"
    else:
        why = f"it ended with status {code} before the video did"
    return errors.InvalidVideo(f"{name} could not be decoded: the decoder stopped ({why})")


class _Reader:
    """Reads the child's records, with a stall timeout; raises what the child reported or how it died."""

    def __init__(self, child: subprocess.Popen, name: str, cage: Cage) -> None:
        self.child, self.name, self.cage = child, name, cage
        self.fd = child.stdout.fileno()

    def _fill(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            ready, _, _ = select.select([self.fd], [], [], self.cage.stall_s)
            if not ready:
                self.child.kill()
                raise errors.InvalidVideo(f"{self.name} could not be decoded: the decoder stalled for "
                                          f"{self.cage.stall_s:.0f} s")
            count = self.child.stdout.readinto(view[got:])
            if not count:
                raise _died(self.child, self.name, self.cage)
            got += count

    def exact(self, size: int) -> bytes:
        buffer = bytearray(size)
        self._fill(memoryview(buffer))
        return bytes(buffer)

    def record(self) -> tuple[bytes, Any]:
        kind = self.exact(1)
        if kind == FRAME:
            index, time_s, height, width, scale = FRAME_HEADER.unpack(self.exact(FRAME_HEADER.size))
            rgb = np.empty((height, width, 3), dtype=np.uint8)
            self._fill(memoryview(rgb).cast("B"))
            return kind, (index, time_s, rgb, scale)
        if kind == I420:
            index, time_s, height, width, scale, rotation = I420_HEADER.unpack(self.exact(I420_HEADER.size))
            planes = np.empty((height * 3 // 2, width), dtype=np.uint8)
            self._fill(memoryview(planes).cast("B"))
            return FRAME, (index, time_s, rgb_from_i420(planes, rotation, scale), scale)
        if kind in (INFO, ERROR):
            return kind, json.loads(self.exact(LENGTH.unpack(self.exact(LENGTH.size))[0]))
        if kind == DONE:
            return kind, None
        raise errors.InvalidVideo(f"{self.name} could not be decoded: the decoder answered nonsense")


def _raise(report: dict[str, Any]) -> None:
    kind = getattr(errors, report.get("kind", ""), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.FtcnError)):
        kind = errors.InvalidVideo
    raise kind(report["message"])


def _request(op: str, path: str | Path, limits: VideoLimits, cage: Cage, **extra: Any) -> dict[str, Any]:
    plain = {k: v for k, v in asdict(limits).items() if k != "cage"}
    return {"op": op, "path": str(Path(path).resolve()), "limits": plain, "cage": asdict(cage), **extra}


def _run(request: dict[str, Any], name: str, cage: Cage) -> Iterator[tuple[bytes, Any]]:
    child = _spawn(request)
    try:
        reader = _Reader(child, name, cage)
        while True:
            kind, value = reader.record()
            if kind == ERROR:
                _raise(value)
            if kind == INFO and "isolation" in value:
                Isolation.last = value["isolation"]
            yield kind, value
            if kind == DONE:
                return
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def caged_probe(path: str | Path, limits: VideoLimits) -> VideoInfo:
    """The video's facts from a caged child; a file probed before (same path, size and modification time, same
    limits) is not probed again: a job probes its input several times (split or not, stream, second look)."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError:
        raise errors.InvalidVideo(f"video not found: {path.name}") from None
    return _probed(str(path), stat.st_size, stat.st_mtime_ns, limits)


@functools.lru_cache(maxsize=64)
def _probed(path: str, size: int, mtime_ns: int, limits: VideoLimits) -> VideoInfo:
    cage = limits.cage
    for kind, value in _run(_request("probe", path, limits, cage), Path(path).name, cage):
        if kind == INFO and "video" in value:
            return VideoInfo(**value["video"])
    raise errors.InvalidVideo(f"{Path(path).name}: no decodable video frame")


def caged_frames(path: str | Path, limits: VideoLimits, max_frames: int | None, scale: float, start_frame: int
                 ) -> Iterator[Frame]:
    cage = limits.cage
    request = _request("frames", path, limits, cage, max_frames=max_frames, scale=scale, start_frame=start_frame)
    for kind, value in _run(request, Path(path).name, cage):
        if kind == FRAME:
            index, time_s, rgb, frame_scale = value
            yield Frame(index=index, time_s=time_s, rgb=rgb, scale=frame_scale)
