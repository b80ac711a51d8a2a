"""One decode for a whole prediction: faces are found, linked and cut into clips while the model classifies the
clips already cut.

The two-pass path (:mod:`ftcn.faces.scan`, then :mod:`ftcn.faces.clip_plan`) decodes the video twice and
leaves the model idle until every face of the video is known. Here a producer thread decodes each frame once,
finds its faces, links them (:class:`ftcn.faces.tracking.Linker`) and keeps, per open track, only the crop regions
a clip may still need; a clip is aligned and queued as soon as its frames are final, and the model (the calling
thread) takes clips from the queue as they come. Memory stays bounded by the clip length: a few regions per open
track, a few raw frames to bridge gaps, a short queue.

What is final: a track's frames up to the last one a detector confirmed never change (only trailing carried frames
are cut when a track closes), so window ``k`` (positions ``k*stride`` .. ``k*stride+clip_len``) is final once the
confirmed part reaches its end. The last window (ending where the track ends) and the windows of tracks shorter
than a clip are cut when the track closes. Tracks are judged when they close; clips already classified for a track
that is then dropped or not judged are discarded. The result is the two-pass result:
same tracks, windows and clip probabilities (``tests/ftcn/test_stream.py``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftcn.faces.align import clip_affine, crop_region, warp_clip
from ftcn.faces.backends import FaceBackend
from ftcn.faces.clips import ClipWindow, clip_windows, crop_boxes
from ftcn.faces.scan import ScanSchedule, frames_expected, iter_frame_faces, scan_schedule
from ftcn.faces.tracking import Linker, TrackerConfig, gap_boxes, track_order
from ftcn.faces.types import Track
from ftcn.predict.judging import JudgingRules, unjudged_reasons
from ftcn.timing import StageTimer
from ftcn.video.decode import Frame, VideoInfo, VideoLimits, probe

#: Aligned clips waiting for the model; the producer waits when it is this far ahead.
QUEUE_CLIPS = 4
#: Seconds between progress reports while the model waits.
REPORT_EVERY_S = 0.25

Key = tuple[int, int]  # (track serial, window number)
#: classify(clips, beside): probabilities of a batch of aligned uint8 clips; ``beside`` is True while the producer
#: is working, so the model should leave it a core (ftcn.runtime.Engine's ``threads``).
Classify = Callable[[list[np.ndarray], bool], np.ndarray]


@dataclass
class StreamResult:
    """What the stream found: kept tracks in display order, why each is not judged (None: judged), the judged
    tracks' windows in plan order (``window.track`` = position among judged tracks) and their probabilities."""

    info: VideoInfo
    frames_read: int
    detect_every: int
    smallest_face_px: float | None
    tracks: list[Track]
    unjudged: list[str | None]
    windows: list[ClipWindow]
    probabilities: np.ndarray
    #: Per window, the mean pixel value (0-255) of its aligned faces: how well lit the face is
    #: (``ftcn.predict.confidence``).
    brightness: np.ndarray | None = None


def mean_brightness(clip: np.ndarray) -> float:
    """Mean pixel value of an aligned uint8 clip (0-255)."""
    return float(clip.mean())


@dataclass
class _Cuts:
    """Per open track: the crop regions cut so far, by frame, and how many windows have been queued."""

    regions: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # frame -> (crop box, pixels)
    queued: int = 0


@dataclass
class _Done:
    kept: list[tuple[int, Track, str | None]]
    frames_read: int


class _Producer:
    """Decode, find faces, link, cut and align; puts ``(key, clip)`` items, then a ``_Done`` (or the exception)."""

    def __init__(self, path: Path, backend: FaceBackend, info: VideoInfo, schedule: ScanSchedule, clip_len: int,
                 stride: int, size: int, tracker: TrackerConfig, judging: JudgingRules, limits: VideoLimits | None,
                 max_frames: int | None, timer: StageTimer, start_frame: int = 0) -> None:
        self.path, self.backend, self.info = path, backend, info
        self.schedule, self.clip_len, self.stride, self.size = schedule, clip_len, stride, size
        self.judging, self.limits, self.max_frames, self.timer = judging, limits, max_frames, timer
        self.start_frame = start_frame
        self.linker = Linker(tracker, first_frame=start_frame)
        self.frame_size = (info.width, info.height)
        self.out: queue.Queue = queue.Queue(maxsize=QUEUE_CLIPS)
        self.stop = threading.Event()
        self.frames_done = start_frame
        self.waiting = False  # True while the queue is full and this thread waits for the model
        self.done = False
        self._cuts: dict[int, _Cuts] = {}
        self._kept: list[tuple[int, Track, str | None]] = []
        self._aligned: list[tuple[Key, np.ndarray]] = []
        # raw frames kept to cut the regions of bridged frames once the gap closes
        self._recent: deque[Frame] = deque(maxlen=tracker.max_gap + 2)

    def run(self) -> None:
        try:
            for frame, faces in iter_frame_faces(self.path, self.backend, self.schedule, self.limits,
                                                 self.max_frames, self.timer, self.start_frame):
                if self.stop.is_set():
                    return
                self._recent.append(frame)
                ended = self.linker.push(faces)
                with self.timer.measure("align"):
                    self._close(ended)  # first: what is left of ended tracks after this was dropped
                    self._cut_open_tracks(frame.index)
                self._hand_over()
                self.frames_done = frame.index + 1
            with self.timer.measure("align"):
                self._close(self.linker.finish())
            self._hand_over()
            self.done = True
            self._put(_Done(self._kept, self.frames_done))
        except BaseException as error:  # handed to the consuming thread, which raises it
            self._put(error)

    def _hand_over(self) -> None:
        """Queue the clips aligned for this frame (outside the align timer: a full queue makes this wait)."""
        for item in self._aligned:
            self._put(item)
        self._aligned.clear()

    def _put(self, item: Any) -> None:
        try:
            self.out.put_nowait(item)
            return
        except queue.Full:
            pass
        self.waiting = True  # ahead of the model: the core this thread had is free
        try:
            while not self.stop.is_set():
                try:
                    self.out.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
        finally:
            self.waiting = False

    def _cut_open_tracks(self, t: int) -> None:
        active = {track.serial for track in self.linker.active}
        for serial in [s for s in self._cuts if s not in active]:
            del self._cuts[serial]  # ended and dropped by the tracker's rules (kept ones were closed already)
        for track in self.linker.active:
            cuts = self._cuts.setdefault(track.serial, _Cuts())
            if track.frames[-1] == t:
                for frame, box in gap_boxes(track):
                    self._cut(cuts, frame, box)
                self._cut(cuts, t, track.boxes[-1])
            settled = track.settled_end - track.frames[0]
            final: Track | None = None
            while cuts.queued * self.stride + self.clip_len <= settled:
                final = final or track.settled()
                start = cuts.queued * self.stride
                self._queue(track.serial, cuts, final, np.arange(start, start + self.clip_len))
            keep_from = track.frames[0] + min(cuts.queued * self.stride, settled - self.clip_len)
            for frame in [f for f in cuts.regions if f < keep_from]:
                del cuts.regions[frame]

    def _cut(self, cuts: _Cuts, frame: int, box: np.ndarray) -> None:
        source = next((f for f in reversed(self._recent) if f.index == frame), None)
        if source is None:  # cannot happen while the buffer spans the tracker's longest gap; say so if it does
            raise RuntimeError(f"frame {frame} left the gap buffer before its crop region was cut")
        crop = crop_boxes(np.asarray(box, np.float64)[None], self.frame_size)[0]
        cuts.regions[frame] = (crop, crop_region(source.rgb, crop))

    def _close(self, ended: list[tuple[int, Track]]) -> None:
        for serial, track in ended:
            reason = unjudged_reasons([track], self.frame_size, self.clip_len, self.judging)[0]
            self._kept.append((serial, track, reason))
            cuts = self._cuts.pop(serial, _Cuts())
            if reason is not None:
                continue
            windows = clip_windows(track, 0, self.clip_len, self.stride)
            while cuts.queued < len(windows):
                self._queue(serial, cuts, track, windows[cuts.queued].positions)

    def _queue(self, serial: int, cuts: _Cuts, track: Track, positions: np.ndarray) -> None:
        crops, regions = zip(*(cuts.regions[int(f)] for f in track.start + positions))
        affine, _ = clip_affine(track.points5[positions], np.stack(crops), self.size)
        self._aligned.append(((serial, cuts.queued), warp_clip(list(regions), np.stack(crops), affine, self.size)))
        cuts.queued += 1


def stream_video(
    path: str | Path,
    backend: FaceBackend,
    classify: Classify,
    *,
    clip_len: int,
    stride: int,
    size: int,
    batch_size: int,
    tracker: TrackerConfig,
    judging: JudgingRules | None = None,
    detect_every: int | None = None,
    limits: VideoLimits | None = None,
    max_frames: int | None = None,
    timer: StageTimer | None = None,
    on_frames: Callable[[int, int | None], None] | None = None,
    start_frame: int = 0,
) -> StreamResult:
    """Find, link, cut and classify in one decode; ``classify`` runs in the calling thread, and so does
    ``on_frames`` (progress: frames decoded, frames expected). ``start_frame``/``max_frames``: only that part of
    the video (a segment, ``ftcn.predict.segments``); frame numbers stay the video's."""
    path = Path(path)
    timer = timer or StageTimer()
    info = probe(path, limits)
    schedule = scan_schedule(backend, info, detect_every)
    producer = _Producer(path, backend, info, schedule, clip_len, stride, size, tracker,
                         judging or JudgingRules(), limits, max_frames, timer, start_frame)
    thread = threading.Thread(target=producer.run, name="ftcn-faces", daemon=True)
    total = frames_expected(info, max_frames)
    probabilities: dict[Key, float] = {}
    brightness: dict[Key, float] = {}
    pending: list[tuple[Key, np.ndarray]] = []

    def flush() -> None:
        # leave the producer a core only when the model is about to wait for it: it is working and nothing is queued
        beside = not (producer.done or producer.waiting) and producer.out.empty()
        with timer.measure("model"):
            found = classify([clip for _, clip in pending], beside)
        probabilities.update(zip((key for key, _ in pending), (float(p) for p in found)))
        brightness.update((key, mean_brightness(clip)) for key, clip in pending)
        pending.clear()

    thread.start()
    try:
        reported = 0.0
        while True:
            with timer.measure("model_idle"):
                try:
                    item = producer.out.get(timeout=REPORT_EVERY_S)
                except queue.Empty:
                    item = None
            if on_frames and time.perf_counter() - reported >= REPORT_EVERY_S:
                on_frames(producer.frames_done, total)
                reported = time.perf_counter()
            if item is None:
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _Done):
                break
            pending.append(item)
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
    finally:
        producer.stop.set()
        thread.join()
    done = item
    if on_frames:
        on_frames(done.frames_read, total)
    kept = sorted(done.kept, key=lambda entry: track_order(entry[1]))
    windows: list[ClipWindow] = []
    used: list[float] = []
    lit: list[float] = []
    for judged, (serial, track, _) in enumerate(entry for entry in kept if entry[2] is None):
        for number, window in enumerate(clip_windows(track, judged, clip_len, stride)):
            windows.append(window)
            used.append(probabilities[(serial, number)])
            lit.append(brightness[(serial, number)])
    return StreamResult(
        info=info, frames_read=done.frames_read, detect_every=schedule.every,
        smallest_face_px=backend.smallest_face_px(info.width, info.height),
        tracks=[track for _, track, _ in kept], unjudged=[reason for _, _, reason in kept], windows=windows,
        probabilities=np.asarray(used, dtype=np.float64), brightness=np.asarray(lit, dtype=np.float64),
    )
