"""Small preprocessed datasets written directly (no face pipeline), for training tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ftcn.datasets.arrays import array_bytes
from ftcn.datasets.preprocess import MANIFEST_FIELDS
from ftcn.datasets.storage import LocalStore


def write_clip_dataset(root: Path, videos: dict[str, tuple[str, str]], clip_shape: tuple[int, int, int],
                       clips_per_video: int = 1, seed: int = 0) -> Path:
    """videos: id -> (label, split). Random uint8 clips [T, S, S, 3]; manifest.csv and split.csv as preprocess and
    split would write them."""
    store = LocalStore(root)
    rng = np.random.default_rng(seed)
    rows = []
    for video_id, (label, split) in videos.items():
        frames, size, _ = clip_shape
        clips = rng.integers(0, 256, (clips_per_video, frames, size, size, 3), dtype=np.uint8)
        path = f"clips/{video_id}.npz"
        store.put(path, array_bytes(clips=clips, track=np.zeros(clips_per_video, np.int64),
                                    start=np.arange(clips_per_video, dtype=np.int64)))
        for index in range(clips_per_video):
            rows.append({"video_id": video_id, "label": label, "split": split, "track": 0, "clip_start": index,
                         "path": path, "index": index, "checksum": "0" * 64, "status": "ok", "reason": ""})
    for name in ("manifest.csv", "split.csv"):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        store.put(name, buffer.getvalue().encode())
    return root
