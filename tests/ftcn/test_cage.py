"""The caged decoder (ftcn.video.cage): the same frames as decoding in-process, and a child that is limited,
isolated and expendable: its memory and CPU limits hold, it has no network, and its death is a clear
InvalidVideo in the caller, who goes on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ftcn.errors import InvalidVideo, NotAVideo
from ftcn.video.cage import Cage, Isolation
from ftcn.video.decode import VideoLimits, iter_frames, probe
from tests.hostile_media import decoding_bomb, photo_named_mp4
from tests.media import TALKING_FACE

CAGED = VideoLimits(cage=Cage())


def test_caged_decoding_gives_the_same_frames() -> None:
    assert probe(TALKING_FACE, CAGED) == probe(TALKING_FACE)
    plain = list(iter_frames(TALKING_FACE, scale=0.5))
    caged = list(iter_frames(TALKING_FACE, CAGED, scale=0.5))
    assert [f.index for f in caged] == [f.index for f in plain] and len(caged) == len(plain)
    assert all(np.array_equal(a.rgb, b.rgb) and a.time_s == b.time_s and a.scale == b.scale
               for a, b in zip(plain, caged))
    assert [f.index for f in iter_frames(TALKING_FACE, CAGED, max_frames=12, start_frame=8)] == [8, 9, 10, 11]
    assert Isolation.last["memory_mb"] == Cage().memory_mb


def test_the_childs_errors_arrive_as_themselves(tmp_path: Path) -> None:
    with pytest.raises(NotAVideo, match="still image"):
        probe(photo_named_mp4(tmp_path), CAGED)
    with pytest.raises(InvalidVideo, match="not found") as caught:
        probe(tmp_path / "missing.mp4", CAGED)
    assert str(tmp_path) not in str(caught.value)


def test_memory_and_cpu_limits_hold(tmp_path: Path) -> None:
    bomb = decoding_bomb(tmp_path)
    with pytest.raises(InvalidVideo, match="256 MB of memory"):
        list(iter_frames(bomb, VideoLimits(cage=Cage(memory_mb=256))))
    with pytest.raises(InvalidVideo, match="CPU time"):
        list(iter_frames(bomb, VideoLimits(cage=Cage(cpu_s=1))))


def _decoders() -> list[int]:
    """This process's caged decoders at work (not the spare waiting for a request)."""
    from ftcn.video.cage import _Spare

    mine, spare = str(os.getpid()), _Spare.child.pid if _Spare.child is not None else None
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ftcn.video.child" in (entry / "cmdline").read_bytes() and \
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == mine and int(entry.name) != spare:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_killed_decoder_is_an_invalid_video_and_the_caller_goes_on(monkeypatch) -> None:
    monkeypatch.setenv("FTCN_SECRET_KEY", "parent-only-secret")
    frames = iter_frames(TALKING_FACE, CAGED)
    next(frames)
    child = _decoders()[0]
    environ = Path(f"/proc/{child}/environ").read_bytes()
    assert b"parent-only-secret" not in environ and b"FTCN_" not in environ
    os.kill(child, signal.SIGSEGV)
    with pytest.raises(InvalidVideo, match="the decoder stopped"):
        for _ in frames:
            pass
    assert _decoders() == []
    assert len(list(iter_frames(TALKING_FACE, CAGED))) == 120


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="network namespaces are Linux's")
def test_the_decoder_has_no_network() -> None:
    """A listening socket here; the child, once locked in as the decoder locks itself in, cannot reach it (and
    without the lock, the same code can: the test can fail)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    code = ("import json, socket, sys\n"
            "from ftcn.video.child import lock_in\n"
            "held = lock_in(json.loads(sys.argv[1]))\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "    print(json.dumps({'connected': True, **held}))\n"
            "except OSError as exc:\n"
            "    print(json.dumps({'connected': False, 'error': str(exc), **held}))\n")
    try:
        for network, reaches in ((False, False), (True, True)):
            cage = {"memory_mb": 1024, "cpu_s": 30, "network": network}
            out = subprocess.run([sys.executable, "-c", code, json.dumps(cage)], capture_output=True, text=True,
                                 timeout=60, check=True).stdout
            report = json.loads(out)
            assert report["connected"] is reaches, report
            if not network:
                assert report["network"].startswith("none"), report
    finally:
        server.close()


def test_a_stalled_decoder_is_stopped(tmp_path: Path, monkeypatch) -> None:
    """A child that never answers (here: one stopped with SIGSTOP) is killed after ``stall_s``."""
    frames = iter_frames(TALKING_FACE, VideoLimits(cage=Cage(stall_s=1.0)))
    next(frames)
    child = _decoders()[0]
    os.kill(child, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(InvalidVideo, match="stalled"):
        for _ in frames:
            pass
    assert time.monotonic() - started < 30 and _decoders() == []
