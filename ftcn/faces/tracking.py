"""Linking per-frame faces into tracks.

Two trackers:

- :func:`link_official` reproduces the official FTCN video script (what ``ftcn_tt.pth`` was evaluated with): only
  faces present from a segment's first frame are followed, and when no face spans the whole video only the first
  track of each "longest segment" is kept. ``--tracker official`` selects it.
- :func:`link_faces` is the product default: it follows every face, including faces that enter later, bridges
  short gaps by interpolation, and keeps identities apart when faces cross (IoU against a constant-velocity
  prediction, matched best-first).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np

from ftcn.faces import official
from ftcn.faces.types import FrameFaces, Track


class TrackingMode(str, Enum):
    FULL_LENGTH = "full_length"
    LONGEST_SEGMENTS = "longest_segments"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two float boxes (x1, y1, x2, y2), width = x2 - x1 (no +1), as the official linking computes it."""
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


# ---------------------------------------------------------------------------------------------- official linking


def _official_tracks(frames: list[FrameFaces], start: int, end: int) -> list[list[int]]:
    """Tracks over [start, end): detection indices of each surviving track (official rules, see module doc)."""
    first = frames[start]
    tracks = []
    for i, face in enumerate(first):
        if face.score < official.TRACK_START_SCORE:
            continue
        if any(iou(face.box, first[j].box) > official.TRACK_START_MAX_IOU for j in range(i)):
            continue
        indices, previous = [i], face.box
        for t in range(start + 1, end):
            if not frames[t]:
                break
            overlaps = [iou(previous, other.box) for other in frames[t]]
            best = int(np.argmax(overlaps))
            if overlaps[best] < official.TRACK_LINK_MIN_IOU:
                break
            indices.append(best)
            previous = frames[t][best].box
        if len(indices) == end - start:
            tracks.append(indices)
    return tracks


def link_official(frames: list[FrameFaces]) -> tuple[TrackingMode, list[Track]]:
    """The official linking: whole-video tracks if any exist, else the first track of each longest segment.

    The segment search keeps the official code's quirks, because they decide which faces the published numbers
    were measured on: the track count it compares against is only forgotten after a kept segment (not after a
    skipped one), a segment that reaches the last frame keeps it, and the scan stops one frame before the end.
    Where the official code raises (a kept run whose tracks vanish), we skip the run instead.
    """
    total = len(frames)
    whole = _official_tracks(frames, 0, total) if total and frames[0] else []
    if whole:
        return TrackingMode.FULL_LENGTH, [Track.from_detections(frames, 0, idx) for idx in whole]

    def tracks_over(start: int, end: int) -> list[list[int]]:
        return _official_tracks(frames, start, end) if frames[start] else []

    tracks: list[Track] = []
    start, previous = 0, -1
    while start < total - 1:
        for end in range(start + 2, total + 1):
            current = len(tracks_over(start, end))
            if current == 0 or (previous != -1 and current != previous):
                break
            previous = current
        if end - start > 2:
            stop = end if end == total else end - 1
            found = tracks_over(start, stop)
            if not found and end == total:
                stop = end - 1
                found = tracks_over(start, stop)
            if found:
                tracks.append(Track.from_detections(frames, start, found[0]))
            previous = -1
            end = stop
        start = end
    return TrackingMode.LONGEST_SEGMENTS, tracks


# ---------------------------------------------------------------------------------------------- product tracker


@dataclass(frozen=True)
class TrackerConfig:
    """Follow-every-face tracker settings."""

    start_score: float = official.TRACK_START_SCORE
    min_iou: float = 0.3
    max_gap: int = 5
    min_track_frames: int = 4
    #: Tracks whose median per-frame score (0 where the face was carried or bridged, not detected) is lower are
    #: dropped: a face the detector confirms in fewer than half of its frames is more likely a passing false
    #: detection that was followed than a face. 0 keeps every track (the official linking has no such rule).
    min_median_score: float = 0.0
    #: Tracks that never reach this score are dropped; with ``start_score`` at the valid score this moves the
    #: official "start on a confident face" rule from the first frame to the whole track (0: no such rule).
    min_peak_score: float = 0.0
    #: Tracks whose median skin share (over frames where it was measured) is lower are dropped (0: no such rule).
    min_skin: float = 0.0
    #: ... unless their median score reaches this: a learned detector that sure of a face outweighs a colour rule
    #: that a grey, cool-lit or heavily compressed face fails (FaceForensics++ 469_481 at c40: skin 0.05-0.19,
    #: MTCNN 0.997-1.0). Above 1: never waived (HOG's margins say less, and HOG fired on grey emblems).
    skin_waived_score: float = 2.0

    def skin_ok(self, skin: list[float], scores: list[float]) -> bool:
        """Whether faces with these skin shares (where measured) and scores pass the skin rule."""
        if not self.min_skin or not skin:
            return True
        return float(np.median(skin)) >= self.min_skin or float(np.median(scores)) >= self.skin_waived_score


@dataclass
class _OpenTrack:
    frames: list[int]
    detections: list[int]
    boxes: list[np.ndarray]
    points: list[np.ndarray]
    scores: list[float]
    skin: list[float] = field(default_factory=list)
    #: Which track this is, in the order tracks were started (stable while the track is open and after).
    serial: int = 0

    def predicted_box(self, frame: int) -> np.ndarray:
        """The last box moved to ``frame`` at its centre's constant velocity (keeps crossing faces apart).

        Only the centre is extrapolated, never the size: a detector's box jumps in size between pyramid levels
        (dlib: 44 px, then 36 px, at the same face), and that jump carried over a bridged gap shrank the prediction
        to a sliver that no longer overlapped the face, splitting one track in two."""
        last = self.boxes[-1]
        if len(self.boxes) < 2:
            return last
        centres = [(box[:2] + box[2:]) / 2 for box in self.boxes[-2:]]
        velocity = (centres[1] - centres[0]) / (self.frames[-1] - self.frames[-2])
        return last + np.tile(velocity * (frame - self.frames[-1]), 2)

    @property
    def settled_end(self) -> int:
        """One past the last frame a detector confirmed: frames before it stay in the track whatever comes next
        (only trailing frames where the face was carried can be cut when it closes)."""
        for frame, score in zip(reversed(self.frames), reversed(self.scores)):
            if score > 0.0:
                return frame + 1
        return self.frames[0]

    def settled(self) -> Track:
        """The track as closing it now would give it (without changing it): the part that is already final."""
        return _close(replace(self, frames=list(self.frames), detections=list(self.detections),
                              boxes=list(self.boxes), points=list(self.points), scores=list(self.scores)))


def _close(open_track: _OpenTrack) -> Track:
    """Turn observed frames into a contiguous track, interpolating boxes and points across gaps.

    Trailing frames where the face was only carried (score 0: no detector saw it) are cut: nothing shows the face
    was still there, and a face that left the frame would otherwise linger for the carry's length.
    """
    while len(open_track.frames) > 1 and open_track.scores[-1] <= 0.0:
        for column in (open_track.frames, open_track.detections, open_track.boxes, open_track.points,
                       open_track.scores):
            column.pop()
    observed = np.asarray(open_track.frames)
    span = np.arange(observed[0], observed[-1] + 1)
    boxes = _interpolated(span, observed, np.asarray(open_track.boxes))
    interpolated = _interpolated(span, observed, np.asarray(open_track.points).reshape(len(observed), -1))
    index_of = dict(zip(open_track.frames, open_track.detections))
    score_of = dict(zip(open_track.frames, open_track.scores))
    return Track(
        start=int(span[0]),
        end=int(span[-1]) + 1,
        detection_index=[index_of.get(int(t), -1) for t in span],
        boxes=boxes,
        points5=interpolated.reshape(len(span), 5, 2),
        scores=np.array([score_of.get(int(t), 0.0) for t in span]),
    )


def gap_boxes(open_track: _OpenTrack) -> list[tuple[int, np.ndarray]]:
    """(frame, box) of the frames bridged between the track's last two observations, interpolated exactly as
    closing the track interpolates them (the same two points, the same arithmetic)."""
    if len(open_track.frames) < 2 or open_track.frames[-1] - open_track.frames[-2] < 2:
        return []
    known = open_track.frames[-2:]
    span = np.arange(known[0] + 1, known[1])
    return list(zip(span.tolist(), _interpolated(span, known, np.asarray(open_track.boxes[-2:]))))


def _interpolated(span: np.ndarray, observed: np.ndarray | list[int], rows: np.ndarray) -> np.ndarray:
    """Each column of ``rows`` (one row per observed frame) linearly interpolated at the frames of ``span``."""
    return np.stack([np.interp(span, observed, rows[:, k]) for k in range(rows.shape[1])], axis=1)


class Linker:
    """The follow-every-face tracker, one frame at a time: greedy best-IoU matching against predicted boxes,
    gaps of up to ``max_gap`` frames bridged. :func:`link_faces` runs it over a whole video; the streaming
    pipeline runs it while it decodes and reads each open track's final part (``_OpenTrack.settled``)."""

    def __init__(self, cfg: TrackerConfig | None = None, first_frame: int = 0) -> None:
        self.cfg = cfg or TrackerConfig()
        self.active: list[_OpenTrack] = []
        self.frame = first_frame  # the video's index of the next frame pushed
        self._serials = 0

    def push(self, faces: FrameFaces) -> list[tuple[int, Track]]:
        """Link the next frame's faces; returns the tracks that ended before it and are kept, with their serials."""
        cfg, t = self.cfg, self.frame
        self.frame += 1
        still_active, ended = [], []
        for track in self.active:
            (still_active if t - track.frames[-1] <= cfg.max_gap + 1 else ended).append(track)
        self.active = still_active
        active = self.active
        pairs = sorted(
            (
                (iou(track.predicted_box(t), face.box), ti, fi)
                for ti, track in enumerate(active)
                for fi, face in enumerate(faces)
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < cfg.min_iou:
                break
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            face = faces[fi]
            track = active[ti]
            track.frames.append(t)
            track.detections.append(fi)
            track.boxes.append(np.asarray(face.box, dtype=np.float64))
            track.points.append(np.asarray(face.points5, dtype=np.float64))
            track.scores.append(float(face.score))
            if face.skin is not None:
                track.skin.append(face.skin)
        for fi, face in enumerate(faces):
            if fi in used_faces or face.score < cfg.start_score:
                continue
            if any(iou(face.box, faces[j].box) > official.TRACK_START_MAX_IOU for j in used_faces | set(range(fi))):
                continue  # a duplicate detection of a face that is already followed
            active.append(
                _OpenTrack([t], [fi], [np.asarray(face.box, np.float64)], [np.asarray(face.points5, np.float64)],
                           [float(face.score)], [] if face.skin is None else [face.skin], serial=self._serials)
            )
            self._serials += 1
        return self._kept(ended)

    def finish(self) -> list[tuple[int, Track]]:
        """Close every open track (the video ended); returns the kept ones with their serials."""
        ended, self.active = self.active, []
        return self._kept(ended)

    def _kept(self, ended: list[_OpenTrack]) -> list[tuple[int, Track]]:
        cfg = self.cfg
        kept = []
        for open_track in ended:
            if not cfg.skin_ok(open_track.skin, open_track.scores):
                continue
            track = _close(open_track)
            if (len(track) >= cfg.min_track_frames and float(np.median(track.scores)) >= cfg.min_median_score
                    and float(track.scores.max()) >= cfg.min_peak_score):
                kept.append((open_track.serial, track))
        return kept


def track_order(track: Track) -> tuple[int, float]:
    """Tracks are listed by first frame, then left to right."""
    return track.start, float(track.boxes[0][0])


def boxes_at(tracks: list[Track], frame: int) -> list[np.ndarray]:
    """The boxes the tracks hold on one frame (what a measurement compares with ground truth)."""
    return [track.boxes[frame - track.start] for track in tracks if track.start <= frame < track.end]


def link_faces(frames: list[FrameFaces], cfg: TrackerConfig | None = None) -> list[Track]:
    """Follow every face over a whole video (:class:`Linker`); tracks in :func:`track_order`."""
    linker = Linker(cfg)
    kept = [track for faces in frames for _, track in linker.push(faces)]
    kept += [track for _, track in linker.finish()]
    return sorted(kept, key=track_order)
