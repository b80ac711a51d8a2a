"""A result document's summary, in plain Python (no numpy): the API image imports it through batch reports."""

from __future__ import annotations

from typing import Any


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The few facts of a result that are shown without it: in a job's summary, a batch's rows, the CLI's line.
    Derived here only, so every place counts judged faces and reads coverage the same way."""
    tracks = result.get("tracks") or []
    return {
        "verdict": result["verdict"],
        "score": result["score"],
        "threshold": result["threshold"],
        "faces": sum(track["score"] is not None for track in tracks),  # judged
        "faces_seen": len(tracks),
        "coverage": result.get("coverage"),
        "no_face_reason": result.get("no_face_reason"),
        "inconclusive_reasons": result.get("inconclusive_reasons") or [],
        "band": result.get("band"),
        "backend": (result.get("faces") or {}).get("backend"),
    }
