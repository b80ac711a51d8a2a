"""Local copies of stored weights (models, detectors) for the worker: whole and verified, or absent.

A copy is written under a temporary name in the cache's folder and renamed into place only once it is complete and,
when the registry knows the file's SHA-256, matches it. So another process never loads a half-written file, and a
worker killed mid-copy leaves no truncated file that every later job would trust (each would then fail with
``bad-checkpoint``). A file already in place is checked against the digest too: copies left by an older worker
without this rule are replaced when they do not match.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from ftcn.digests import file_sha256
from jobs.storage import StorageError


def cached_copy(download: Callable[[Path], None], target: Path, sha256: str | None = None) -> Path:
    """``target``, fetched with ``download(path)`` unless a copy matching ``sha256`` (any, when None) is there."""
    if target.exists() and (sha256 is None or file_sha256(target) == sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        download(partial)
        if sha256 is not None:
            found = file_sha256(partial)
            if found != sha256:
                raise StorageError(f"the stored copy of {target.name} has the SHA-256 {found[:12]}..., not the "
                                   f"registered {sha256[:12]}...: it is damaged or was replaced")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
