"""The prediction result: verdict, scores and per-track timelines, as plain data with a versioned JSON schema."""

from __future__ import annotations

import json
from enum import Enum
from importlib import resources
from typing import Any

import numpy as np

from ftcn.faces.clips import ClipWindow
from ftcn.faces.types import Track
from ftcn.predict.scoring import frame_scores, mean_score

RESULT_SCHEMA_VERSION = "1.0"


class Verdict(str, Enum):
    FAKE = "FAKE"
    REAL = "REAL"
    NO_FACE = "NO_FACE"


def verdict_for(score: float | None, threshold: float) -> Verdict:
    if score is None:
        return Verdict.NO_FACE
    return Verdict.FAKE if score >= threshold else Verdict.REAL


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def track_results(
    tracks: list[Track], windows: list[ClipWindow], probabilities: np.ndarray, threshold: float
) -> list[dict[str, Any]]:
    """One entry per track: its frames, boxes, clip count, score (mean over its clips) and per-frame timeline."""
    results = []
    for index, track in enumerate(tracks):
        mine = [i for i, w in enumerate(windows) if w.track == index]
        predictions = [float(probabilities[i]) for i in mine]
        per_frame = frame_scores([windows[i] for i in mine], predictions, track.end)[track.start : track.end]
        score = mean_score(predictions)
        results.append(
            {
                "id": index,
                "start_frame": track.start,
                "end_frame": track.end,
                "frames": list(range(track.start, track.end)),
                "boxes": [[round(float(v), 2) for v in box] for box in track.boxes],
                "detected": [d >= 0 for d in track.detection_index],
                "clips": len(mine),
                "score": _rounded(score),
                "verdict": verdict_for(score, threshold).value,
                "timeline": [_rounded(s) for s in per_frame],
            }
        )
    return results


def video_score(tracks: list[dict[str, Any]]) -> float | None:
    """The most suspicious track decides: one forged face in a crowd makes the video forged."""
    scores = [t["score"] for t in tracks if t["score"] is not None]
    return max(scores) if scores else None


def load_schema() -> dict[str, Any]:
    return json.loads(resources.files("ftcn.predict").joinpath("result.schema.json").read_text())
