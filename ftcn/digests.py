"""File digests: the SHA-256 that identifies an input video (resumable preprocessing) or a weight file (result.json
and the detector registry say which weights ran)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Read in 1 MiB blocks, so a large video costs no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
