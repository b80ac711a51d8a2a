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
from ftcn.predict.versions import ANALYSIS_VERSION, RESULT_SCHEMA_VERSION  # noqa: F401 (re-exported)


class Verdict(str, Enum):
    FAKE = "FAKE"
    REAL = "REAL"
    NO_FACE = "NO_FACE"
    INCONCLUSIVE = "INCONCLUSIVE"  # too near the threshold, or faces seen too badly (ftcn.predict.confidence)


#: The verdict of a track that was seen but not scored (ftcn.predict.judging says why).
UNJUDGED = "UNJUDGED"


def verdict_for(score: float | None, threshold: float) -> Verdict:
    """The verdict from a score alone (``ftcn.predict.confidence`` may make it INCONCLUSIVE)."""
    if score is None:
        return Verdict.NO_FACE
    return Verdict.FAKE if score >= threshold else Verdict.REAL


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def track_results(
    tracks: list[Track], windows: list[ClipWindow], probabilities: np.ndarray, threshold: float,
    unjudged: list[str | None] | None = None,
) -> list[dict[str, Any]]:
    """One entry per track: its frames, boxes, clip count, score (mean over its clips) and per-frame timeline.

    ``unjudged[i]`` is why track i was not scored (None: judged). Windows refer to judged tracks by their position
    among the judged ones, as they were planned.
    """
    unjudged = unjudged or [None] * len(tracks)
    judged_index = {}
    for index, reason in enumerate(unjudged):
        if reason is None:
            judged_index[index] = len(judged_index)
    results = []
    for index, track in enumerate(tracks):
        entry: dict[str, Any] = {
            "id": index,
            "start_frame": track.start,
            "end_frame": track.end,
            "frames": list(range(track.start, track.end)),
            "boxes": [[round(float(v), 2) for v in box] for box in track.boxes],
            "detected": [d >= 0 for d in track.detection_index],
        }
        if unjudged[index] is not None:
            results.append({**entry, "clips": 0, "score": None, "verdict": UNJUDGED,
                            "unjudged_reason": unjudged[index], "timeline": [None] * len(track)})
            continue
        mine = [i for i, w in enumerate(windows) if w.track == judged_index[index]]
        predictions = [float(probabilities[i]) for i in mine]
        per_frame = frame_scores([windows[i] for i in mine], predictions, track.end)[track.start : track.end]
        score = mean_score(predictions)
        results.append({**entry, "clips": len(mine), "score": _rounded(score),
                        "verdict": verdict_for(score, threshold).value,
                        "timeline": [_rounded(s) for s in per_frame]})
    return results


def video_score(tracks: list[dict[str, Any]]) -> float | None:
    """The most suspicious judged track decides: one forged face in a crowd makes the video forged."""
    scores = [t["score"] for t in tracks if t["score"] is not None]
    return max(scores) if scores else None


def coverage(tracks: list[dict[str, Any]], frames_read: int) -> dict[str, Any]:
    """How much of the video was judged: frames with a judged face, and frames with any face seen."""
    judged: set[int] = set()
    seen: set[int] = set()
    for track in tracks:
        seen.update(track["frames"])
        if track["score"] is not None:
            judged.update(track["frames"])
    share = len(judged) / frames_read if frames_read else 0.0
    return {"frames": frames_read, "frames_judged": len(judged), "frames_with_faces": len(seen),
            "share": round(share, 4)}


def no_face_reason(tracks: list[dict[str, Any]], frames_read: int, smallest_face_px: float | None,
                   second: dict[str, Any] | None = None) -> str | None:
    """Why a video has no verdict, in words for its user (None when it has one)."""
    if any(t["score"] is not None for t in tracks):
        return None
    floor = f"; faces from about {smallest_face_px:.0f} px tall are found" if smallest_face_px else ""
    if tracks:
        reasons = sorted({t["unjudged_reason"] for t in tracks})
        text = (f"faces were seen ({len(tracks)} track(s)) but none could be judged: " + "; ".join(reasons)
                + f" ({frames_read} frames scanned{floor})")
    else:
        text = f"no face was found in {frames_read} frames scanned{floor}"
    if second and second["frames_checked"]:
        if second.get("saw_a_face"):
            text += (f"; a second detector ({second['detector']}) saw a face in {second['frames_with_faces']} of "
                     f"{second['frames_checked']} sampled frames that the pipeline could not follow: the video may "
                     "be too compressed, blurred or turned away; a better copy or the retinaface backend may help")
        elif second["frames_with_faces"]:
            text += (f"; a second detector ({second['detector']}) found a possible face in only "
                     f"{second['frames_with_faces']} of {second['frames_checked']} frames sampled across the whole video, "
                     f"too few to be a face that is there (faces from about {second['smallest_face_px']:.0f} px)")
        else:
            text += (f"; a second detector ({second['detector']}) saw none either in {second['frames_checked']} "
                     f"frames sampled across the whole video (faces from about {second['smallest_face_px']:.0f} px)")
    return text


def load_schema() -> dict[str, Any]:
    return json.loads(resources.files("ftcn.predict").joinpath("result.schema.json").read_text())
