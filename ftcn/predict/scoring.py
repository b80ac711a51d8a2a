"""How clip predictions become per-frame, per-track and per-video scores (official rules)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ftcn.faces.clips import ClipWindow


def frame_scores(windows: Sequence[ClipWindow], predictions: Sequence[float], num_frames: int) -> list[float | None]:
    """Mean prediction of every clip slot a frame occupies (a frame repeated inside a padded clip counts each
    time); frames in no clip are None."""
    if len(windows) != len(predictions):
        raise ValueError(f"{len(windows)} clips but {len(predictions)} predictions")
    totals = np.zeros(num_frames, dtype=np.float64)
    counts = np.zeros(num_frames, dtype=np.int64)
    for window, prediction in zip(windows, predictions):
        np.add.at(totals, window.frames, float(prediction))
        np.add.at(counts, window.frames, 1)
    return [float(totals[t] / counts[t]) if counts[t] else None for t in range(num_frames)]


def mean_score(predictions: Sequence[float]) -> float | None:
    """The official video (or track) score: the mean over clips; None when there are none."""
    return float(np.mean(predictions)) if len(predictions) else None
