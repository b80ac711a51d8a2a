"""``ftcn preprocess``: labelled videos -> aligned uint8 face clips plus one index manifest.

The same face pipeline as prediction (backend, follow-all tracking, per-clip alignment), so a model trained on
these clips sees faces prepared exactly as it will at prediction time. Output layout in the store:

    clips/<video key>.npz     clips uint8 [N, T, H, W, 3], track [N], start [N] (first frame of each clip)
    records/<video key>.json  the video's outcome; written last, so its presence means "done"
    manifest.csv              one row per clip (and one per failed video), rebuilt from the records

A rerun skips a video whose record has the same video id and source checksum, and redoes any video without a
record (a run that died half-way). A failing video is recorded with its reason and never stops the run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing as mp
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ftcn.datasets.arrays import array_bytes
from ftcn.datasets.sources import VideoEntry, video_key
from ftcn.datasets.storage import DatasetStore, open_store
from ftcn.digests import file_sha256
from ftcn.errors import InvalidSource
from ftcn.faces.backends import make_backend
from ftcn.faces.clip_plan import iter_aligned_clips, plan_clips
from ftcn.faces.names import DEFAULT_BACKEND
from ftcn.faces.scan import scan_faces
from ftcn.faces.tracking import link_faces
from ftcn.video.decode import InvalidVideo, VideoLimits

log = logging.getLogger(__name__)

MANIFEST_FIELDS = ["video_id", "label", "split", "track", "clip_start", "path", "index", "checksum", "status", "reason",
                   "method"]


@dataclass(frozen=True)
class PreprocessConfig:
    clip_len: int = 8
    size: int = 64
    max_clips: int = 8
    max_frames: int | None = 300
    face_thres: float = 0.5
    bbox_thres: int = 40  # smallest face box side in pixels (the reference preprocessing script's name)
    backend: str = DEFAULT_BACKEND
    retinaface_weights: str | None = None
    landmark_weights: str | None = None
    detect_every: int | None = None  # None: the backend's interval for the frame size
    limits: VideoLimits = field(default_factory=VideoLimits)


def _select(count: int, limit: int) -> list[int]:
    """Up to ``limit`` indices spread evenly over ``count`` candidates."""
    if count <= limit:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, limit)})


def process_video(entry: VideoEntry, cfg: PreprocessConfig, backend: Any) -> tuple[dict[str, np.ndarray] | None,
                                                                                  str | None]:
    """Aligned clips of one video, or (None, reason) when it yields none."""
    try:
        scan = scan_faces(entry.path, backend, detect_every=cfg.detect_every, limits=cfg.limits,
                          max_frames=cfg.max_frames)
    except InvalidVideo as exc:
        return None, str(exc)
    faces = [
        [f for f in frame if (f.carried or f.score >= cfg.face_thres)
         and min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= cfg.bbox_thres]
        for frame in scan.faces
    ]
    tracker = backend.tracker_config
    tracks = link_faces(faces, replace(tracker, start_score=max(tracker.start_score, cfg.face_thres)))
    if not tracks:
        return None, "no face"
    plans, crops = plan_clips(tracks, (scan.info.width, scan.info.height), cfg.clip_len, cfg.clip_len, cfg.size)
    chosen = [plans[i] for i in _select(len(plans), cfg.max_clips)]
    clips = np.zeros((len(chosen), cfg.clip_len, cfg.size, cfg.size, 3), dtype=np.uint8)
    for index, clip in iter_aligned_clips(entry.path, chosen, crops, tracks, cfg.size, cfg.limits):
        clips[index] = clip
    return {
        "clips": clips,
        "track": np.array([p.window.track for p in chosen], dtype=np.int64),
        "start": np.array([int(p.window.frames[0]) for p in chosen], dtype=np.int64),
    }, None


def _record(entry: VideoEntry, checksum: str, arrays: dict[str, np.ndarray] | None, reason: str | None) -> dict:
    key = video_key(entry.video_id)
    return {
        "video_id": entry.video_id,
        "label": entry.label,
        "split": entry.split,
        "method": entry.method,
        "checksum": checksum,
        "status": "ok" if arrays is not None else "failed",
        "reason": reason,
        "path": f"clips/{key}.npz" if arrays is not None else None,
        "tracks": arrays["track"].tolist() if arrays is not None else [],
        "starts": arrays["start"].tolist() if arrays is not None else [],
    }


def _is_done(store: DatasetStore, entry: VideoEntry, checksum: str) -> bool:
    key = f"records/{video_key(entry.video_id)}.json"
    if not store.exists(key):
        return False
    record = json.loads(store.get(key))
    done = record.get("video_id") == entry.video_id and record.get("checksum") == checksum
    return done and (record["status"] == "failed" or store.exists(record["path"]))


_worker_backend: Any = None


def _worker_init(cfg: PreprocessConfig) -> None:
    global _worker_backend
    _worker_backend = make_backend(cfg.backend, retinaface_weights=cfg.retinaface_weights,
                                   landmark_weights=cfg.landmark_weights)


def _work(job: tuple[VideoEntry, PreprocessConfig, DatasetStore, str]) -> dict:
    entry, cfg, store, checksum = job
    try:
        arrays, reason = process_video(entry, cfg, _worker_backend)
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop a dataset run; the reason is recorded
        log.exception("preprocessing %s failed", entry.video_id)
        arrays, reason = None, f"{type(exc).__name__}: {exc}"
    record = _record(entry, checksum, arrays, reason)
    if arrays is not None:
        store.put(record["path"], array_bytes(**arrays))
    store.put(f"records/{video_key(entry.video_id)}.json", json.dumps(record).encode())
    return record


@dataclass
class PreprocessSummary:
    videos: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    clips: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def preprocess(
    entries: list[VideoEntry], out: str | Path | DatasetStore, cfg: PreprocessConfig | None = None, workers: int = 1,
    on_video: Callable[[int, int], None] | None = None, origin: dict[str, Any] | None = None,
) -> PreprocessSummary:
    """Preprocess every entry into ``out`` (folder or s3://), resumably; returns what happened. ``origin`` says
    what the videos are, for the model card (by default: ``ftcn synth``'s videos are recognised, others unnamed)."""
    cfg = cfg or PreprocessConfig()
    if not entries:
        raise InvalidSource("no videos to preprocess")
    store = open_store(out)
    summary = PreprocessSummary(videos=len(entries))
    jobs = []
    for entry in entries:
        checksum = file_sha256(entry.path)
        if _is_done(store, entry, checksum):
            summary.skipped += 1
        else:
            jobs.append((entry, cfg, store, checksum))
    done = summary.skipped
    if on_video:
        on_video(done, len(entries))
    if jobs:
        if workers > 1:
            context = mp.get_context("spawn")
            with context.Pool(workers, initializer=_worker_init, initargs=(cfg,)) as pool:
                results = pool.imap_unordered(_work, jobs)
                for _ in results:
                    done += 1
                    if on_video:
                        on_video(done, len(entries))
        else:
            _worker_init(cfg)
            for job in jobs:
                _work(job)
                done += 1
                if on_video:
                    on_video(done, len(entries))
        summary.processed = len(jobs)
    rows = write_manifest(store, entries)
    store.put("origin.json", json.dumps(origin or origin_of(entries)).encode())
    summary.clips = sum(1 for r in rows if r["status"] == "ok")
    failed = {r["video_id"]: r["reason"] for r in rows if r["status"] == "failed"}
    summary.failed, summary.failures = len(failed), failed
    return summary


def origin_of(entries: list[VideoEntry]) -> dict[str, Any]:
    """What the videos are, for the model card of what is trained on them: ``synthetic`` when every one was made
    by ``ftcn synth`` (its synth.json beside the video's folder), with the forgery methods used."""
    marks = []
    for entry in entries:
        found = next((folder / "synth.json" for folder in entry.path.parents[:2] if (folder / "synth.json").is_file()),
                     None)
        marks.append(found)
    if not marks or None in marks:
        return {"synthetic": False}
    methods: set[str] = set()
    for mark in set(marks):
        described = json.loads(mark.read_text())
        methods |= set(described.get("methods") or ["jitter", "flicker", "mask", "stutter"])
    return {"synthetic": True, "source": "ftcn synth", "methods": sorted(methods)}


def write_manifest(store: DatasetStore, entries: list[VideoEntry]) -> list[dict[str, Any]]:
    """Rebuild manifest.csv from the records of the given entries (one row per clip, one per failed video)."""
    rows = []
    for entry in entries:
        record = json.loads(store.get(f"records/{video_key(entry.video_id)}.json"))
        base = {k: record[k] for k in ("video_id", "label", "split", "checksum", "status", "reason")}
        base["method"] = record.get("method", "")
        if record["status"] != "ok":
            rows.append({**base, "track": "", "clip_start": "", "path": "", "index": ""})
            continue
        for index, (track, start) in enumerate(zip(record["tracks"], record["starts"])):
            rows.append({**base, "track": track, "clip_start": start, "path": record["path"], "index": index})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    store.put("manifest.csv", buffer.getvalue().encode())
    return rows


__all__ = ["PreprocessConfig", "PreprocessSummary", "preprocess", "process_video", "write_manifest"]
