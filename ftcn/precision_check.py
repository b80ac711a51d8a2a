"""Whether a model may run in a faster arithmetic (bf16, int8), judged by what its users see: verdicts and AUC.

A user never sees a clip probability; they see a verdict, and researchers see AUC. So a precision passes for a
model when, on the model's own validation videos, with only the arithmetic changed (the same clips through the
same network):

- its video-level AUC is at least fp32's minus :data:`AUC_MARGIN`,
- at least :data:`MIN_AGREEMENT` of its verdicts at the model's threshold equal fp32's, and
- it was judged on at least :data:`MIN_VIDEOS` videos (fewer cannot show that agreement).

The precisions that pass are recorded in the checkpoint's metadata (:func:`record`, key ``precision``) and so in
its model card; a model then runs in the fastest of them when no precision is asked (:func:`engine_for_model`).
A model with no record (the official ``ftcn_tt.pth``) runs in fp32 unless the user asks for another.

int8 is calibrated on the model's training clips (``ftcn.quantize``), never on the videos it is judged on.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ftcn.checkpoints import Checkpoint, model_from_checkpoint, save_checkpoint
from ftcn.datasets.split import load_split_rows
from ftcn.datasets.storage import DatasetStore
from ftcn.errors import BadOption
from ftcn.models import FTCN
from ftcn.precision import FASTEST_FIRST, Precision, native_bf16
from ftcn.quantize import CALIBRATION_CLIPS, install_int8, int8_available, int8_graph, read_int8
from ftcn.runtime import Engine, Runtime, available, engine_for
from ftcn.training.data import ClipDataset, ClipRef, clip_refs
from ftcn.training.metrics import by_video
from ftcn.training.ranking import roc_auc

#: A faster precision may lose at most this much video AUC against fp32 ...
AUC_MARGIN = 0.005
#: ... and must give the same verdict as fp32 on at least this share of videos ...
MIN_AGREEMENT = 0.99
#: ... of at least this many: fewer cannot show 99 % agreement (one flip in 10 is 90 %, none in 10 proves
#: little). Measured: on 10 validation videos int8 passed 5 of 12 trained models, and 120 held-out videos then
#: refused one of those 5 (96.7 % same verdicts; docs/benchmarks.md).
MIN_VIDEOS = 100
#: Clips scored per forward pass while judging.
BATCH = 4


@dataclass(frozen=True)
class Judged:
    """One precision on one model's videos, against fp32."""

    precision: str
    videos: int
    auc: float | None
    auc_fp32: float | None
    agreement: float  # share of videos whose verdict equals fp32's
    largest_change: float  # the largest change of a video score
    seconds_per_clip: float
    prepare_s: float  # making the engine (int8: quantizing on the calibration clips)
    passed: bool
    why: str  # what failed, or "" when it passed


def judge(precision: str, fp32_scores: Sequence[float], scores: Sequence[float], labels: Sequence[float],
          threshold: float, seconds_per_clip: float = 0.0, prepare_s: float = 0.0,
          min_videos: int = MIN_VIDEOS) -> Judged:
    """The rule, on video scores computed both ways (same videos, same order)."""
    reference, candidate = np.asarray(fp32_scores, float), np.asarray(scores, float)
    if reference.shape != candidate.shape or not len(reference):
        raise ValueError("both precisions must score the same, non-empty list of videos")
    auc_fp32, auc = roc_auc(labels, reference), roc_auc(labels, candidate)
    agreement = float(np.mean((reference >= threshold) == (candidate >= threshold)))
    reasons = []
    if auc_fp32 is not None and (auc is None or auc < auc_fp32 - AUC_MARGIN):
        reasons.append(f"AUC {auc:.4f} against fp32's {auc_fp32:.4f} (at most {AUC_MARGIN} lower)")
    if agreement < MIN_AGREEMENT:
        reasons.append(f"{agreement:.1%} of verdicts equal fp32's (at least {MIN_AGREEMENT:.0%})")
    if precision != Precision.FP32.value and len(reference) < min_videos:
        reasons.append(f"judged on {len(reference)} videos; at least {min_videos} are needed to show "
                       f"{MIN_AGREEMENT:.0%} of verdicts equal")
    return Judged(precision, len(reference), auc, auc_fp32, agreement, float(np.max(np.abs(candidate - reference))),
                  seconds_per_clip, prepare_s, not reasons, "; ".join(reasons))


def unavailable(precision: str, why: str) -> Judged:
    return Judged(precision, 0, None, None, 0.0, 0.0, 0.0, 0.0, False, f"not available here: {why}")


def score_videos(engine: Engine, clips: ClipDataset) -> tuple[list[str], list[float], list[float], float]:
    """(video ids, labels, video scores, seconds per clip) of every clip of ``clips`` through ``engine``."""
    probabilities = []
    started = time.perf_counter()
    for start in range(0, len(clips), BATCH):
        batch = torch.stack([clips[i][0] for i in range(start, min(len(clips), start + BATCH))])
        probabilities.append(torch.sigmoid(engine(batch).float()).numpy())
    seconds = (time.perf_counter() - started) / max(1, len(clips))
    refs = clips.refs
    videos, labels, scores = by_video([r.video_id for r in refs], [r.label for r in refs],
                                      np.concatenate(probabilities).tolist())
    return videos, labels, scores, seconds


def calibration_clips(clips: ClipDataset, count: int) -> list[np.ndarray]:
    """``count`` clips spread evenly over ``clips`` (the training split), as the model's input."""
    if not len(clips):
        return []
    picks = np.unique(np.linspace(0, len(clips) - 1, num=min(count, len(clips))).round().astype(int))
    return [clips[int(i)][0].numpy() for i in picks]


#: How each faster precision's engine is made: (model, calibration clips) -> engine; a test swaps one.
EngineMaker = Callable[[FTCN, list[np.ndarray]], Engine]


def _bf16_engine(model: FTCN, calibration: list[np.ndarray]) -> Engine:
    return engine_for(model, Runtime.AUTO, Precision.BF16.value)


def _int8_engine(model: FTCN, calibration: list[np.ndarray]) -> Engine:
    int8_graph(model, calibration)
    return engine_for(model, Runtime.OPENVINO, Precision.INT8.value)


ENGINES: dict[str, EngineMaker] = {Precision.BF16.value: _bf16_engine, Precision.INT8.value: _int8_engine}


def _why_not(precision: str) -> str | None:
    if precision == Precision.BF16.value and not native_bf16("cpu") and not torch.cuda.is_available():
        return "this CPU has no native bf16"
    if precision == Precision.INT8.value:
        if not (int8_available() and available(Runtime.OPENVINO)):
            return "int8 needs the nncf and openvino packages"
    return None


def check_precisions(model: FTCN, threshold: float, store: DatasetStore, judged_on: list[ClipRef],
                     calibrate_on: list[ClipRef], precisions: Sequence[str] = ("bf16", "int8"),
                     engines: dict[str, EngineMaker] | None = None, calibration_count: int = CALIBRATION_CLIPS,
                     min_videos: int = MIN_VIDEOS, calibration_store: DatasetStore | None = None) -> list[Judged]:
    """fp32 first, then each precision, on the clips of ``judged_on`` (the validation videos); int8 is calibrated
    on ``calibrate_on`` (training clips, in ``calibration_store`` when they are not in ``store``). Returns one row
    per precision, fp32's included."""
    model = model.eval()
    makers = {**ENGINES, **(engines or {})}
    videos = ClipDataset(store, judged_on, model.cfg)
    started = time.perf_counter()
    reference = engine_for(model, Runtime.AUTO, Precision.FP32.value)
    prepared = time.perf_counter() - started
    _, labels, fp32_scores, fp32_seconds = score_videos(reference, videos)
    rows = [judge(Precision.FP32.value, fp32_scores, fp32_scores, labels, threshold, fp32_seconds, prepared)]
    calibration: list[np.ndarray] | None = None
    for precision in precisions:
        why = _why_not(precision) if engines is None or precision not in engines else None
        if why:
            rows.append(unavailable(precision, why))
            continue
        if calibration is None:
            calibration = calibration_clips(ClipDataset(calibration_store or store, calibrate_on, model.cfg),
                                            calibration_count)
        started = time.perf_counter()
        try:
            engine = makers[precision](model, calibration)
        except BadOption as error:
            rows.append(unavailable(precision, str(error)))
            continue
        prepared = time.perf_counter() - started
        _, _, scores, seconds = score_videos(engine, videos)
        rows.append(judge(precision, fp32_scores, scores, labels, threshold, seconds, prepared, min_videos))
    return rows


def record(rows: list[Judged], min_videos: int = MIN_VIDEOS) -> dict[str, Any]:
    """What a checkpoint keeps of its check (``metadata["precision"]``): the precisions that passed, the rule,
    and every row with its figures (the model card shows them)."""
    return {"passed": [row.precision for row in rows if row.passed],
            "rule": {"auc_margin": AUC_MARGIN, "min_agreement": MIN_AGREEMENT, "min_videos": min_videos},
            "checked": [asdict(row) for row in rows]}


def passed_precisions(metadata: dict[str, Any] | None) -> list[str]:
    """The precisions a checkpoint's own check passed ([] without a record)."""
    return list(((metadata or {}).get("precision") or {}).get("passed") or [])


def engine_for_model(model: FTCN, checkpoint: Checkpoint, runtime: str, precision: str) -> Engine:
    """The engine a prediction runs: the asked precision, or with ``auto`` the fastest the model's check passed
    that can run here (a CPU without bf16, no int8 graph: the next one), else fp32 as before any check."""
    if precision != Precision.AUTO.value:
        if precision == Precision.INT8.value:
            _install_int8(model, checkpoint)
        return engine_for(model, runtime, precision)
    passed = passed_precisions(checkpoint.metadata)
    for candidate in FASTEST_FIRST:
        if candidate is Precision.FP32 or candidate.value not in passed or _why_not(candidate.value):
            continue
        if candidate is Precision.INT8:
            _install_int8(model, checkpoint)
        try:
            return engine_for(model, runtime, candidate.value)
        except BadOption:
            continue
    return engine_for(model, runtime, precision)  # fp32 ("auto" as asked: the same engine as before any check)


#: Models whose checkpoint's int8 graph is in place: finding its files digests every weight, so once a process.
_installed: "weakref.WeakSet[FTCN]" = weakref.WeakSet()


def _install_int8(model: FTCN, checkpoint: Checkpoint) -> None:
    if checkpoint.int8_graph is not None and model not in _installed:
        install_int8(model, checkpoint.int8_graph)
        _installed.add(model)


def check_checkpoint(checkpoint: Checkpoint, store: DatasetStore, judge_split: str = "val",
                     calibrate_split: str = "train", engines: dict[str, EngineMaker] | None = None,
                     rows: list[dict[str, Any]] | None = None, min_videos: int = MIN_VIDEOS
                     ) -> tuple[Checkpoint, list[Judged]]:
    """The checkpoint with its check recorded (metadata ``precision``, and its int8 graph when int8 passed),
    judged on the ``judge_split`` videos of a preprocessed dataset and calibrated on its ``calibrate_split``
    (``rows``: the split to use, when not the dataset's own split.csv)."""
    rows = rows if rows is not None else load_split_rows(store)
    judged_on, calibrate_on = clip_refs(rows, judge_split), clip_refs(rows, calibrate_split)
    if not judged_on:
        raise BadOption(f"no {judge_split!r} clips to judge the precisions on")
    model = model_from_checkpoint(checkpoint)
    table = check_precisions(model, checkpoint.threshold, store, judged_on, calibrate_on, engines=engines,
                             min_videos=min_videos)
    passed_int8 = any(row.passed and row.precision == Precision.INT8.value for row in table)
    graph = read_int8(model) if passed_int8 else None
    metadata = {**checkpoint.metadata, "precision": record(table, min_videos)}
    return replace(checkpoint, metadata=metadata, int8_graph=graph), table


def save_checked(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write a checked checkpoint (our format, whatever it was read from)."""
    return save_checkpoint(path, model_from_checkpoint(checkpoint), checkpoint.threshold, checkpoint.metadata,
                           band=checkpoint.band, int8_graph=checkpoint.int8_graph)


def table_lines(table: list[Judged]) -> list[str]:
    """The check as a user reads it: one line per precision."""
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [f"{'precision':9} {'videos':>6} {'AUC':>7} {'fp32 AUC':>8} {'same verdict':>12} {'largest change':>14} "
             f"{'s/clip':>7} {'prepare s':>9}  decision"]
    for row in table:
        decision = "passes" if row.passed else f"refused: {row.why}"
        lines.append(f"{row.precision:9} {row.videos:>6} {number(row.auc):>7} {number(row.auc_fp32):>8} "
                     f"{row.agreement:>12.1%} {row.largest_change:>14.4f} {row.seconds_per_clip:>7.3f} "
                     f"{row.prepare_s:>9.1f}  {decision}")
    return lines
