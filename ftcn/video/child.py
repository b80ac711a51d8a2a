"""The caged decoder (``python -m ftcn.video.child [REQUEST]``, else the request on stdin; ``ftcn.video.cage``
starts it and reads it).

It imports its code, waits for its request, and locks itself in before it opens the file: resource limits, ``no_new_privs``, and a new
network namespace where the kernel lets it make one. Then it runs the ordinary decoding code
(``ftcn.video.decode``, without a cage) and writes records to stdout: the video's info, frames, then done, or
the error that stopped it.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_NO_NEW_PRIVS = 38


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def lock_in(cage: dict[str, Any]) -> dict[str, Any]:
    """Limits and isolation for this process; what holds, for the record."""
    megabytes = int(cage["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (megabytes, megabytes))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cage["cpu_s"]), int(cage["cpu_s"]) + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # writes no file (the pipe to its parent is not one)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    held = {"memory_mb": int(cage["memory_mb"]), "cpu_s": int(cage["cpu_s"]), "network": "kept"}
    if not sys.platform.startswith("linux"):
        return {**held, "network": "kept (not Linux: no network namespace)"}
    libc = _libc()
    held["no_new_privs"] = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    if cage.get("network"):
        return held
    if libc.unshare(CLONE_NEWNET) == 0:
        held["network"] = "none (own network namespace)"
    elif libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        held["network"] = "none (own user and network namespaces)"
    else:
        held["network"] = f"kept (the kernel refused a network namespace: errno {ctypes.get_errno()})"
    return held


def _out_of_memory(request: dict[str, Any]) -> str:
    return (f"{os.path.basename(request['path'])} could not be decoded within the decoder's "
            f"{request['cage']['memory_mb']} MB of memory")


def _near_the_limit(cage: dict[str, Any]) -> bool:
    """Whether this process's address space came within 15 % of its limit (so a failure was likely a refused
    allocation)."""
    try:
        status = open("/proc/self/status").read()
    except OSError:
        return False
    peak = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmPeak:")), 0)
    return peak >= 0.85 * int(cage["memory_mb"]) * 1024 * 1024


def _write(kind: bytes, payload: bytes) -> None:
    sys.stdout.buffer.write(kind + payload)


def _json(kind: bytes, value: dict[str, Any]) -> None:
    from ftcn.video.cage import LENGTH

    body = json.dumps(value).encode()
    _write(kind, LENGTH.pack(len(body)) + body)


def main(argv: list[str]) -> int:
    """Imports first (a spare waits with them done), then the request (argv, or one line on stdin), then the
    lock, then the file."""
    from dataclasses import asdict

    import numpy as np

    from ftcn.errors import FtcnError
    from ftcn.video.cage import DONE, ERROR, FRAME, FRAME_HEADER, I420, I420_HEADER, INFO
    from ftcn.video.decode import VideoLimits, decoded_frames, probe
    from ftcn.video.pixels import i420_planes, swscale_rgb

    line = argv[0] if argv else sys.stdin.readline()
    if not line.strip():
        return 0  # a spare whose parent ended without needing it
    request = json.loads(line)
    held = lock_in(request["cage"])

    limits = VideoLimits(**request["limits"])
    _json(INFO, {"isolation": held})
    try:
        if request["op"] == "probe":
            _json(INFO, {"video": asdict(probe(request["path"], limits))})
        else:
            out = sys.stdout.buffer
            scale = request["scale"]
            for index, time_s, frame, rotation in decoded_frames(request["path"], limits, request["max_frames"],
                                                                 request["start_frame"]):
                planes = i420_planes(frame)  # shipped as they are, converted by the parent (ftcn.video.pixels)
                if planes is not None:
                    out.write(I420 + I420_HEADER.pack(index, time_s, frame.height, frame.width, scale, rotation))
                    pixels = planes
                else:
                    pixels = swscale_rgb(frame, rotation, scale)
                    height, width = pixels.shape[:2]
                    out.write(FRAME + FRAME_HEADER.pack(index, time_s, height, width, scale))
                out.write(memoryview(np.ascontiguousarray(pixels)).cast("B"))
    except (MemoryError, BlockingIOError):  # no memory left for a buffer, or for a decoding thread's stack
        _json(ERROR, {"kind": "InvalidVideo", "message": _out_of_memory(request)})
        return 0
    except FtcnError as exc:  # FFmpeg reports a failed allocation as bad data: the peak address space tells
        message = _out_of_memory(request) if _near_the_limit(request["cage"]) else str(exc)
        _json(ERROR, {"kind": type(exc).__name__, "message": message})
        return 0
    except Exception as exc:  # noqa: BLE001 - whatever stopped the decoder is the file's fault, said in words
        _json(ERROR, {"kind": "InvalidVideo", "message": f"{os.path.basename(request['path'])} could not be "
                      f"decoded: {type(exc).__name__}: {exc}"})
        return 0
    _write(DONE, b"")
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except BrokenPipeError:  # the parent stopped reading (it had the frames it wanted)
        os._exit(0)
