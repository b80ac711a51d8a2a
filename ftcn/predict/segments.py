"""A long video in time segments, analysed apart (on as many workers as are free) and merged into one result.

Each segment owns the frames ``[start, end)`` and decodes one clip (rounded up to the detection interval) more on
each side, so a face that crosses a boundary is seen by both neighbours over that overlap. A segment judges every
track it sees (whether a track is long enough or inside the frame is decided on the merged track) and keeps the
clips whose first frame it owns. The merge cuts every segment's tracks to the frames it owns, links the pieces
that meet at a boundary when their boxes agree over the overlap, judges the merged tracks, and hands the owned
clips to the merged tracks. Detections happen on the same frames as in one run (every ``detect_every``-th frame
of the video), so a crossing face gets the same boxes on both sides; the clips of a crossing track start at its
start in each segment rather than at its first frame, which moves a long track's score by a few thousandths
(``tests/ftcn/test_segments.py`` bounds it at 0.01 against one run).

The pieces are plain data (:func:`segment_result` writes JSON), so any worker can merge them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ftcn.checkpoints import Checkpoint
from ftcn.faces.backends import FaceBackend
from ftcn.faces.clips import ClipWindow
from ftcn.faces.tracking import iou, track_order
from ftcn.faces.types import Track
from ftcn.models import FTCN
from ftcn.predict.judging import JudgingRules, unjudged_reasons
from ftcn.predict.options import PredictOptions, Progress
from ftcn.predict.passes import streamed
from ftcn.predict.pipeline import looked_again, result_document
from ftcn.predict.stream import StreamResult
from ftcn.precision_check import engine_for_model
from ftcn.timing import StageTimer
from ftcn.video.decode import VideoInfo

#: Pieces meeting at a boundary are one face when their boxes overlap this much (mean IoU over shared frames).
LINK_IOU = 0.5
#: A segment judges every track it sees: the real rules are applied to the merged tracks.
JUDGE_ALL = JudgingRules(min_frames=1, min_inside=0.0)


@dataclass(frozen=True)
class SegmentPlan:
    index: int
    start: int  # first frame it owns
    end: int  # one past the last frame it owns
    decode_start: int
    decode_end: int

    def to_dict(self) -> dict[str, int]:
        return {"index": self.index, "start": self.start, "end": self.end, "decode_start": self.decode_start,
                "decode_end": self.decode_end}


def plan_segments(frame_count: int, fps: float, segment_s: float, clip_len: int,
                  detect_every: int) -> list[SegmentPlan]:
    """Segments of about ``segment_s`` seconds whose boundaries fall on detection frames; one segment when the
    video is not longer than that. The overlap is one clip on each side; a last segment shorter than two
    overlaps is folded into the one before."""
    step = max(1, detect_every)
    margin = math.ceil(clip_len / step) * step
    length = max(margin * 2, round(segment_s * fps / step) * step)
    starts = list(range(0, frame_count, length))
    if len(starts) > 1 and frame_count - starts[-1] < 2 * margin:
        starts.pop()
    ends = starts[1:] + [frame_count]
    return [SegmentPlan(i, a, b, max(0, a - margin), min(frame_count, b + margin))
            for i, (a, b) in enumerate(zip(starts, ends))]


def run_segment(path: str | Path, model: FTCN, checkpoint: Checkpoint, backend: FaceBackend,
                options: PredictOptions, plan: SegmentPlan, progress: Progress | None = None) -> dict[str, Any]:
    """Faces, tracks and clip probabilities of one segment, as plain data."""
    options = options.resolved(model, backend)
    timer = StageTimer()
    engine = engine_for_model(model, checkpoint, options.runtime, options.precision)
    options = replace(options, runtime=engine.runtime, precision=engine.precision, max_frames=plan.decode_end,
                      judging=JUDGE_ALL)
    backend.timer.reset()
    report = progress or (lambda stage, done, total: None)
    with timer.measure("total"):
        found = streamed(Path(path), model, backend, engine, options, report, timer, start_frame=plan.decode_start)
    timer.merge(backend.timer)
    judged = [track for track, reason in zip(found.tracks, found.unjudged) if reason is None]
    owned = [(window, float(p), float(light)) for window, p, light in
             zip(found.windows, found.probabilities, found.brightness)
             if plan.start <= int(window.frames[0]) < plan.end]
    return {
        "plan": plan.to_dict(),
        "info": vars(found.info),
        "detect_every": found.detect_every,
        "smallest_face_px": found.smallest_face_px,
        "frames_read": found.frames_read,
        "stride": options.stride,
        "tracks": [{"start": t.start, "end": t.end, "detection_index": [int(d) for d in t.detection_index],
                    "boxes": t.boxes.tolist(), "points5": t.points5.tolist(), "scores": t.scores.tolist()}
                   for t in judged],
        "windows": [{"track": w.track, "frames": w.frames.tolist(), "probability": p, "brightness": light}
                    for w, p, light in owned],
        "timings_s": timer.rounded(),
    }


def _track(data: dict[str, Any]) -> Track:
    return Track(data["start"], data["end"], list(data["detection_index"]), np.asarray(data["boxes"], np.float64),
                 np.asarray(data["points5"], np.float64).reshape(-1, 5, 2), np.asarray(data["scores"], np.float64))


def _cut(track: Track, start: int, end: int) -> Track | None:
    """The part of a track inside [start, end), or None."""
    a, b = max(track.start, start), min(track.end, end)
    if a >= b:
        return None
    i, j = a - track.start, b - track.start
    return Track(a, b, track.detection_index[i:j], track.boxes[i:j], track.points5[i:j], track.scores[i:j])


def _agreement(left: Track, right: Track) -> float:
    """Mean IoU of two tracks' boxes over the frames both have (0 when none)."""
    a, b = max(left.start, right.start), min(left.end, right.end)
    if a >= b:
        return 0.0
    return float(np.mean([iou(left.boxes[f - left.start], right.boxes[f - right.start]) for f in range(a, b)]))


def _joined(pieces: list[Track]) -> Track:
    return Track(pieces[0].start, pieces[-1].end, [d for p in pieces for d in p.detection_index],
                 np.concatenate([p.boxes for p in pieces]), np.concatenate([p.points5 for p in pieces]),
                 np.concatenate([p.scores for p in pieces]))


def merge_segments(parts: list[dict[str, Any]], clip_len: int, judging: JudgingRules | None = None) -> StreamResult:
    """One result from the segments' results (in any order): tracks linked across boundaries, judged as wholes,
    with every owned clip."""
    parts = sorted(parts, key=lambda part: part["plan"]["index"])
    info = VideoInfo(**parts[0]["info"])
    frame_size = (info.width, info.height)
    chains: list[list[tuple[int, int]]] = []  # each merged track: its (segment, local track) pieces in order
    ends_at: dict[int, tuple[int, Track]] = {}  # chain -> (segment, full local track) of its last piece
    pieces: dict[tuple[int, int], Track] = {}
    for k, part in enumerate(parts):
        plan = part["plan"]
        local = [_track(data) for data in part["tracks"]]
        candidates = []
        for i, track in enumerate(local):
            piece = _cut(track, plan["start"], plan["end"])
            if piece is None:
                continue
            pieces[(k, i)] = piece
            if piece.start == plan["start"]:
                for chain, (segment, before) in ends_at.items():
                    if segment == k - 1 and pieces[chains[chain][-1]].end == plan["start"]:
                        candidates.append((_agreement(before, track), chain, i))
        linked: dict[int, int] = {}
        taken: set[int] = set()
        for agreement, chain, i in sorted(candidates, reverse=True):
            if agreement >= LINK_IOU and chain not in taken and i not in linked:
                linked[i] = chain
                taken.add(chain)
        for i, track in enumerate(local):
            if (k, i) not in pieces:
                continue
            if i in linked:
                chain = linked[i]
                chains[chain].append((k, i))
            else:
                chain = len(chains)
                chains.append([(k, i)])
            ends_at[chain] = (k, track)
    merged = [_joined([pieces[key] for key in chain]) for chain in chains]
    order = sorted(range(len(merged)), key=lambda c: track_order(merged[c]))
    tracks = [merged[c] for c in order]
    position = {chain: rank for rank, chain in enumerate(order)}
    home = {key: position[c] for c, chain in enumerate(chains) for key in chain}
    unjudged = unjudged_reasons(tracks, frame_size, clip_len, judging)
    judged_index: dict[int, int] = {}
    for index, reason in enumerate(unjudged):
        if reason is None:
            judged_index[index] = len(judged_index)
    collected: list[tuple[int, int, ClipWindow, float, float]] = []
    for k, part in enumerate(parts):
        for window in part["windows"]:
            track_index = home.get((k, window["track"]))
            if track_index is None or track_index not in judged_index:
                continue
            track = tracks[track_index]
            frames = np.asarray(window["frames"], dtype=np.int64)
            if frames.min() < track.start or frames.max() >= track.end:
                continue  # the neighbour saw this face end sooner: the clip is not the merged track's
            clip = ClipWindow(judged_index[track_index], frames - track.start, frames)
            collected.append((judged_index[track_index], int(frames[0]), clip, window["probability"],
                              window["brightness"]))
    collected.sort(key=lambda entry: (entry[0], entry[1]))
    return StreamResult(
        info=info, frames_read=max(part["frames_read"] for part in parts), detect_every=parts[0]["detect_every"],
        smallest_face_px=parts[0]["smallest_face_px"], tracks=tracks, unjudged=unjudged,
        windows=[entry[2] for entry in collected],
        probabilities=np.asarray([entry[3] for entry in collected], dtype=np.float64),
        brightness=np.asarray([entry[4] for entry in collected], dtype=np.float64),
    )


def merged_document(path: str | Path, parts: list[dict[str, Any]], model: FTCN, checkpoint: Checkpoint,
                    backend: FaceBackend, options: PredictOptions, timer: StageTimer | None = None
                    ) -> dict[str, Any]:
    """The result document of a video analysed in segments: the merged tracks, the adaptive pass's second look
    at the borderline ones (a track's doubt shows only once it is whole), as one run would write it."""
    timer = timer or StageTimer()
    options = options.resolved(model, backend)
    engine = engine_for_model(model, checkpoint, options.runtime, options.precision)
    options = replace(options, runtime=engine.runtime, precision=engine.precision)
    found = merge_segments(parts, model.cfg.clip_len, options.judging)
    found, again = looked_again(Path(path), found, model, engine, checkpoint, options, timer)
    return result_document(Path(path).name, Path(path), found, model.cfg, checkpoint, backend, options, timer,
                           again)

