"""When a verdict would be a coin toss: INCONCLUSIVE, with the reasons, instead of FAKE or REAL.

Two kinds of reason. A score inside the model's inconclusive band (set on validation videos when it was trained,
``ftcn.training.metrics.choose_band``, and stored in its checkpoint) is too near the threshold: on validation data,
verdicts there were no better than chance. And a face the model saw badly: too small (the official preprocessing
drops faces whose box is under 40 px), too dark to show its texture, or seen too briefly for more than a clip or
two of motion. A judged track with either kind of reason gets the verdict INCONCLUSIVE.

The video's verdict: FAKE when any face is reliably called forged (one forged face makes the video forged, as
with scores); otherwise INCONCLUSIVE when any face could not be reliably called (a badly seen face may hide a
forgery); otherwise REAL. The score stays the most suspicious face's, whatever the verdict.

With no judged face at all, NO_FACE only when no detector saw one: a face that was seen but not judged (too small,
too brief), or that the second look before NO_FACE saw where the pipeline could not follow it, makes the video
INCONCLUSIVE, with what stopped it as the reason. A forgery that hides from the face stage must not pass as "no
face" (FaceForensics++ fakes did, with dlib's HOG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ftcn.faces.clips import ClipWindow
from ftcn.predict.result import Verdict

INCONCLUSIVE = Verdict.INCONCLUSIVE.value


@dataclass(frozen=True)
class QualityRules:
    #: Median face box height below which a face is too small: the official preprocessing's 40 px.
    min_face_px: float = 40.0
    #: Mean pixel value (0-255) of the aligned face below which it is too dark to read.
    min_brightness: float = 40.0
    #: Shortest time a judged face is seen for; shorter, and few clips of motion decide.
    min_seconds: float = 1.0


def track_quality(entry: dict[str, Any], brightness: list[float], fps: float) -> dict[str, Any]:
    """How well a track's face was seen: median box height (px), mean brightness of its aligned clips, seconds."""
    boxes = np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 4)
    height = float(np.median(boxes[:, 3] - boxes[:, 1])) if len(boxes) else 0.0
    return {"face_px": round(height, 1),
            "brightness": round(float(np.mean(brightness)), 1) if brightness else None,
            "seconds": round(len(entry["frames"]) / fps, 2) if fps > 0 else None}


def concerns(quality: dict[str, Any], score: float | None, threshold: float, band: tuple[float, float] | None,
             rules: QualityRules) -> list[str]:
    """Why a judged track's verdict cannot be trusted, in words for its user (empty: it can)."""
    found = []
    if band is not None and score is not None and band[0] < band[1] and band[0] <= score <= band[1]:
        found.append(f"score {score:.3f} is too near the threshold {threshold:.3f}: between {band[0]:.3f} and "
                     f"{band[1]:.3f}, this model's verdicts on validation videos were unreliable")
    if quality["face_px"] < rules.min_face_px:
        found.append(f"the face is too small: {quality['face_px']:.0f} px tall, at least {rules.min_face_px:.0f} "
                     "needed")
    if quality["brightness"] is not None and quality["brightness"] < rules.min_brightness:
        found.append(f"the face is too dark: mean brightness {quality['brightness']:.0f} of 255, at least "
                     f"{rules.min_brightness:.0f} needed")
    if quality["seconds"] is not None and quality["seconds"] < rules.min_seconds:
        found.append(f"the face is seen too briefly: {quality['seconds']:.2f} s, at least "
                     f"{rules.min_seconds:g} s needed")
    return found


def assess_tracks(tracks: list[dict[str, Any]], windows: list[ClipWindow], brightness: np.ndarray | None,
                  fps: float, threshold: float, band: tuple[float, float] | None,
                  rules: QualityRules | None = None) -> None:
    """Add ``quality`` and ``concerns`` to every judged track of a result (in place); a track with concerns gets
    the verdict INCONCLUSIVE. Windows refer to judged tracks by their position among the judged ones."""
    rules = rules or QualityRules()
    judged = [entry for entry in tracks if entry["score"] is not None]
    lit: list[list[float]] = [[] for _ in judged]
    if brightness is not None:
        for window, value in zip(windows, brightness):
            lit[window.track].append(float(value))
    for entry, values in zip(judged, lit):
        entry["quality"] = track_quality(entry, values, fps)
        entry["concerns"] = concerns(entry["quality"], entry["score"], threshold, band, rules)
        if entry["concerns"]:
            entry["verdict"] = INCONCLUSIVE


def video_verdict(tracks: list[dict[str, Any]], base: str,
                  second_look: dict[str, Any] | None = None) -> tuple[str, list[str] | None]:
    """The video's verdict from its assessed tracks, and the reasons when it is INCONCLUSIVE. ``base``: the
    verdict from the score alone (FAKE, REAL or NO_FACE); ``second_look``: what the second detector saw, when
    one looked (``ftcn.predict.second_look``)."""
    judged = [entry for entry in tracks if entry["score"] is not None]
    if not judged:
        seen = [f"face {entry['id']} was seen but not judged: {entry['unjudged_reason']}" for entry in tracks]
        if second_look and second_look.get("saw_a_face"):
            seen.append(f"a second detector ({second_look['detector']}) saw a face in "
                        f"{second_look['frames_with_faces']} of {second_look['frames_checked']} sampled frames that "
                        "the pipeline could not follow")
        return (INCONCLUSIVE, seen) if seen else (base, None)
    if any(entry["verdict"] == Verdict.FAKE.value for entry in judged):
        return Verdict.FAKE.value, None
    doubtful = [entry for entry in judged if entry["verdict"] == INCONCLUSIVE]
    if not doubtful:
        return base, None
    return INCONCLUSIVE, [f"face {entry['id']}: {reason}" for entry in doubtful for reason in entry["concerns"]]
