"""The worker's copies of stored weights are whole and verified, or absent (jobs.weights_cache)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.storage import StorageError
from jobs.weights_cache import cached_copy

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = os.urandom(3 * 1024 * 1024)
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()


def _copy_from(source: bytes):
    return lambda path: path.write_bytes(source)


def test_a_copy_killed_half_way_leaves_nothing_that_a_later_job_would_trust(tmp_path: Path) -> None:
    """A worker killed (SIGKILL) while it copies: no file at the final path; the next worker copies it whole."""
    target = tmp_path / "cache" / "models" / "m" / "model.pt"
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from jobs.weights_cache import cached_copy\n"
        "def download(path):\n"
        "    with open(path, 'wb') as handle:\n"
        "        handle.write(b'x' * 1_000_000)  # half of the file, then the worker dies\n"
        "        handle.flush()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"cached_copy(download, Path({str(target)!r}), {DIGEST!r})\n"
    )
    died = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True)
    assert died.returncode == -signal.SIGKILL
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()][0].endswith(".partial")  # the dead worker's, under its own name
    assert cached_copy(_copy_from(WEIGHTS), target, DIGEST).read_bytes() == WEIGHTS


def test_a_truncated_copy_left_by_an_older_worker_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(WEIGHTS[:1000])
    assert cached_copy(_copy_from(WEIGHTS), target, DIGEST).read_bytes() == WEIGHTS
    calls = []
    cached_copy(lambda path: calls.append(path), target, DIGEST)  # whole and matching: not fetched again
    assert calls == []


def test_a_stored_file_that_does_not_match_the_registry_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    with pytest.raises(StorageError, match="SHA-256"):
        cached_copy(_copy_from(WEIGHTS[:-1]), target, DIGEST)
    assert list(tmp_path.iterdir()) == []
