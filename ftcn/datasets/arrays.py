"""Clip arrays in stored form: named numpy arrays <-> .npz bytes (no pickles)."""

from __future__ import annotations

import io

import numpy as np


def array_bytes(**arrays: np.ndarray) -> bytes:
    """Arrays -> .npz bytes (uncompressed: uint8 clips barely compress and loading stays fast)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
