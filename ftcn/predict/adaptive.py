"""The adaptive pass: one clip per frame everywhere, twice as many clips only where the verdict could depend on it.

One pass per frame (clips every clip length) is the fewest clips that score every frame. It weighs each frame
once and sees it at one offset, so a track's score moves against the denser half-clip stride, by up to 0.12 on
bench_one_pass's trained models; but it moves most where the clips disagree or the score sits near the
threshold, and there a move can change the verdict. So after the one pass, each judged track whose clips fall on
both sides of the threshold, whose score lies in the model's inconclusive band or within :data:`NEAR_LOGIT`
log-odds of the threshold is looked at again: the clips half a clip off its one-pass clips are cut from a second
decode of that track's frames only, and the track is scored on both sets, which are exactly the half-clip
stride's clips. A clear video costs one pass; a borderline one the dense mode's clips and one more decode of
its borderline faces. ``bench/bench_one_pass.py`` measures its verdicts and AUC against the reference mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from ftcn.faces.align import clip_affine
from ftcn.faces.clip_plan import ClipPlan, iter_aligned_clips
from ftcn.faces.clips import ClipWindow, crop_boxes, padded_positions
from ftcn.faces.types import Track
from ftcn.predict.stream import StreamResult, mean_brightness
from ftcn.timing import StageTimer
from ftcn.video.decode import VideoLimits

#: A track whose one-pass score lies within this many log-odds of the threshold is looked at again. Chosen with
#: bench/calibrate_adaptive.py on a calibration set apart from the held-out sets that measure the guard (40
#: synthetic videos of every method, seed 98, scored by bench_one_pass's 12 trained tiny and small models): on the
#: models of 2026-12-04, 1 log-odds (with the two other rules) kept every video's verdict equal to the half-clip
#: stride's, looking at 43 % of those weak models' tracks again (smaller margins were not recorded then). On the models
#: retrained 2026-12-06 every margin kept every verdict, 0 included (29 % looked at again; 1: 39 %); 1 is kept as
#: room for a model whose clips agree but whose mean lands just beside the threshold (README, bench_one_pass).
NEAR_LOGIT = 1.0


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def looks_borderline(probabilities: np.ndarray, threshold: float, band: tuple[float, float] | None = None) -> bool:
    """Whether a track's one-pass clips leave its verdict in doubt: they disagree (some at or above the threshold,
    some below), or their mean lies in the inconclusive band or near the threshold."""
    values = np.asarray(probabilities, dtype=np.float64)
    if len(values) == 0:
        return False
    if (values >= threshold).any() and (values < threshold).any():
        return True
    score = float(values.mean())
    if band is not None and band[0] <= score <= band[1]:
        return True
    return abs(_logit(score) - _logit(threshold)) < NEAR_LOGIT


def window_starts(windows: list[ClipWindow], track: Track) -> list[int] | None:
    """Where each of a track's windows starts in its clip sequence (padded when the track is shorter than a clip,
    ``ftcn.faces.clips.padded_positions``); None when that is not known (a padded clip rebuilt from frame numbers,
    whose place in the repeating padding is ambiguous)."""
    if all(w.start is not None for w in windows):
        return [int(w.start) for w in windows]  # type: ignore[arg-type]
    if len(track) >= len(windows[0].positions):
        return [int(w.positions[0]) for w in windows]
    return None


def half_shifted(windows: list[ClipWindow], track: Track, track_index: int, step: int
                 ) -> list[tuple[int, ClipWindow]]:
    """(start, window) of the windows ``step`` positions apart that fill the gaps between a track's windows (one
    pass's windows are a clip length apart; with ``step`` half a clip the union is the half-clip stride's
    windows)."""
    clip_len = len(windows[0].positions)
    sequence = np.asarray(padded_positions(len(track), clip_len))
    starts = window_starts(windows, track)
    extra: list[tuple[int, ClipWindow]] = []
    for here, there in zip(sorted(starts or []), sorted(starts or [])[1:]):
        for start in range(here + step, there, step):
            positions = sequence[start:start + clip_len]
            extra.append((start, ClipWindow(track_index, positions, track.start + positions, start)))
    return extra


Classify = Callable[[list[np.ndarray]], np.ndarray]


def look_again(path: str | Path, found: StreamResult, classify: Classify, *, threshold: float,
               band: tuple[float, float] | None, step: int, size: int, batch_size: int,
               limits: VideoLimits | None = None, timer: StageTimer | None = None) -> tuple[StreamResult, list[int]]:
    """``found`` with the half-shifted clips of its borderline tracks added (windows in track, then start order),
    and the indices (among all tracks) of the tracks looked at again."""
    timer = timer or StageTimer()
    judged = [i for i, reason in enumerate(found.unjudged) if reason is None]
    tracks = [found.tracks[i] for i in judged]
    crops = [crop_boxes(track.boxes, (found.info.width, found.info.height)) for track in tracks]
    plans: list[ClipPlan] = []
    starts_of_plans: list[int] = []
    again: list[int] = []
    # every window, the one pass's and the new ones, as (judged track, start along it, window, p, brightness)
    lit = found.brightness if found.brightness is not None else np.zeros(len(found.windows))
    rows: list[tuple[int, int, ClipWindow, float, float]] = []
    for j, track in enumerate(tracks):
        mine = [k for k, w in enumerate(found.windows) if w.track == j]
        if not mine:
            continue
        starts = window_starts([found.windows[k] for k in mine], track) or list(range(len(mine)))
        rows += [(j, start, found.windows[k], float(found.probabilities[k]), float(lit[k]))
                 for start, k in zip(starts, mine)]
        if not looks_borderline(found.probabilities[mine], threshold, band):
            continue
        extra = half_shifted([found.windows[k] for k in mine], track, j, step)
        if extra:
            again.append(judged[j])
        for start, window in extra:
            affine, _ = clip_affine(track.points5[window.positions], crops[j][window.positions], size)
            plans.append(ClipPlan(window, affine))
            starts_of_plans.append(start)
    if not plans:
        return found, again
    first = min(int(plan.window.frames.min()) for plan in plans)
    probabilities = np.full(len(plans), np.nan)
    brightness = np.zeros(len(plans))
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        with timer.measure("model"):
            probabilities[[i for i, _ in pending]] = classify([clip for _, clip in pending])
        pending.clear()

    for index, clip in iter_aligned_clips(path, plans, crops, tracks, size, limits, timer=timer, start_frame=first):
        brightness[index] = mean_brightness(clip)
        pending.append((index, clip))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    rows += [(plan.window.track, start, plan.window, float(p), float(b))
             for plan, start, p, b in zip(plans, starts_of_plans, probabilities, brightness)]
    rows.sort(key=lambda row: (row[0], row[1]))
    return replace(found, windows=[row[2] for row in rows],
                   probabilities=np.asarray([row[3] for row in rows], dtype=np.float64),
                   brightness=np.asarray([row[4] for row in rows], dtype=np.float64)), again
