"""A long video on one worker against the same video in segments on several (``FTCN_SEGMENT_S``, jobs.segments).

    .venv/bin/python bench/bench_segments.py                         # 10-min 720p, full model, 3 workers
    .venv/bin/python bench/bench_segments.py --seconds 120 --model tiny --segment-s 30

Both sides are the whole job a worker does: ``predict_video`` then the annotated video for one worker; for the
segments, every segment (``ftcn.predict.segments.run_segment``) on ``--workers`` worker processes taking segments
from one queue as Celery workers do, then the merge (tracks linked, the result document, the annotated video) on
one. Each worker is a fresh process that loads the model and warms its engine before the clock starts, as a
running worker has it. It prints both wall times, their ratio, and whether the merged result is the one-run
result (same tracks and verdict, the largest score difference).

What the figure means depends on the machine: each worker here is a process on this machine's cores. On a machine
with fewer cores than ``--workers`` x the threads a worker uses, the workers share the cores and the ratio cannot
reach 1 / workers; it measures the split's overhead rather than its gain. So the script also runs every segment
alone, one after another on the whole machine (the time each takes on a worker of its own, as on separate
machines), and projects the job's time on ``--workers`` such machines: segments taken in order by whichever
worker is free (as Celery hands them out), then the merge, which runs on one. ``projected_ratio`` is that time
over the one-worker time; ``serial_share`` is the merge's share of it, the part no number of workers shortens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ftcn.checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.names import DEFAULT_BACKEND  # noqa: E402
from ftcn.models import build_model, config_for_size  # noqa: E402
from ftcn.faces.scan import scan_interval  # noqa: E402
from ftcn.predict.pipeline import PredictOptions, predict_video, result_document  # noqa: E402
from ftcn.predict.segments import SegmentPlan, merge_segments, plan_segments, run_segment  # noqa: E402
from ftcn.render.annotate import write_annotated_video  # noqa: E402
from ftcn.runtime import engine_for  # noqa: E402
from ftcn.synth.generate import looped_sample  # noqa: E402
from ftcn.timing import StageTimer  # noqa: E402
from ftcn.video.decode import VideoLimits, probe  # noqa: E402

LIMITS = VideoLimits(max_duration_s=4 * 3600)
_WORKER: dict = {}


def _prepare(weights: str) -> None:
    """A worker process: the model loaded and its engine warmed (what a running worker has)."""
    if _WORKER.get("weights") == weights:
        return
    _WORKER["weights"] = weights
    checkpoint = load_checkpoint(weights)
    model = model_from_checkpoint(checkpoint)
    engine_for(model, "auto", "auto")
    _WORKER.update(checkpoint=checkpoint, model=model, backend=make_backend(DEFAULT_BACKEND))


def _segment(video: str, plan: dict, weights: str) -> tuple[dict, float]:
    _prepare(weights)
    started = time.perf_counter()
    part = run_segment(Path(video), _WORKER["model"], _WORKER["checkpoint"], _WORKER["backend"],
                       PredictOptions(limits=LIMITS), SegmentPlan(**plan))
    return part, time.perf_counter() - started


def _one_worker(video: Path, weights: str, out: Path) -> tuple[dict, float]:
    _prepare(weights)
    started = time.perf_counter()
    result = predict_video(video, _WORKER["model"], _WORKER["checkpoint"], _WORKER["backend"],
                           PredictOptions(limits=LIMITS))
    write_annotated_video(video, result, out / "one.mp4", LIMITS)
    return result, time.perf_counter() - started


def _ready(weights: str | None) -> int:
    """Start (and, given weights, prepare) a pool's worker before the clock does."""
    if weights:
        _prepare(weights)
    time.sleep(1.0)  # long enough that every worker of the pool takes one
    return os.getpid()


def _make(work: str, seconds: float, width: int, height: int, model: str, video: str | None) -> tuple[str, str]:
    """The video and the (random) weights, made in a worker: the parent never starts a thread pool before the
    pools fork (a fork after torch's or FFmpeg's threads started can hang the child)."""
    path = Path(video) if video else looped_sample(Path(work) / "long.mp4", seconds, width, height)
    torch.manual_seed(0)  # random weights: the figures are about time; the result comparison is exact work
    return str(path), str(save_checkpoint(Path(work) / "model.pt", build_model(config_for_size(model))))


def _merge(video: Path, parts: list[dict], out: Path, weights: str) -> dict:
    """The merge, on a worker as the last segment's worker runs it."""
    _prepare(weights)
    checkpoint, model, backend = _WORKER["checkpoint"], _WORKER["model"], _WORKER["backend"]
    found = merge_segments(parts, model.cfg.clip_len)
    options = PredictOptions(limits=LIMITS).resolved(model, backend)
    result = result_document(video.name, video, found, model.cfg, checkpoint, backend, options, StageTimer())
    write_annotated_video(video, result, out / "merged.mp4", LIMITS)
    return result


def _alone(video: str, plans: list[dict], weights: str) -> list[float]:
    """Each segment alone on a warm worker with the whole machine, one after another: seconds each."""
    _prepare(weights)
    return [_segment(video, plan, weights)[1] for plan in plans]


def makespan(durations: list[float], workers: int) -> float:
    """When the last segment ends if ``workers`` take them in order, each the next one when it is free."""
    free = [0.0] * workers
    for seconds in durations:
        index = free.index(min(free))
        free[index] += seconds
    return max(free)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--model", choices=["tiny", "small", "full"], default="full")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--segment-s", type=float, default=120.0)
    parser.add_argument("--video", type=Path, help="use this video instead of the looped sample")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftcn-segments-") as folder, \
            ProcessPoolExecutor(1) as alone, ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(_ready, [None] * args.workers))  # every process forks now, before anything starts a thread
        alone.submit(_ready, None).result()
        work = Path(folder)
        made, weights = alone.submit(_make, folder, args.seconds, args.width, args.height, args.model,
                                     str(args.video) if args.video else None).result()
        video = Path(made)
        whole, one_s = alone.submit(_one_worker, video, weights, work).result()
        print(f"one worker: {one_s:.1f} s ({whole['input']['frames_read']} frames, {len(whole['tracks'])} tracks)",
              flush=True)
        info = probe(video, LIMITS)
        plans = plan_segments(whole["input"]["frames_read"], info.fps, args.segment_s,
                              config_for_size(args.model).clip_len,
                              scan_interval(make_backend(DEFAULT_BACKEND), info, None))
        list(pool.map(_ready, [weights] * args.workers))
        started = time.perf_counter()
        done = list(pool.map(_segment, [str(video)] * len(plans), [p.to_dict() for p in plans],
                             [weights] * len(plans)))
        segments_s = time.perf_counter() - started
        merging = time.perf_counter()
        merged = pool.submit(_merge, video, [part for part, _ in done], work, weights).result()
        merge_s = time.perf_counter() - merging
        split_s = time.perf_counter() - started
        each = alone.submit(_alone, str(video), [p.to_dict() for p in plans], weights).result()
    projected = makespan(each, args.workers) + merge_s
    deltas = [abs(a["score"] - b["score"]) for a, b in zip(merged["tracks"], whole["tracks"])
              if a["score"] is not None and b["score"] is not None]
    same_tracks = [(t["start_frame"], t["end_frame"]) for t in merged["tracks"]] == \
        [(t["start_frame"], t["end_frame"]) for t in whole["tracks"]]
    figures = {"seconds": info.duration_s, "size": f"{info.width}x{info.height}", "model": args.model,
               "cpus": os.cpu_count(), "workers": args.workers, "segments": len(plans),
               "one_worker_s": round(one_s, 1), "segments_s": round(segments_s, 1), "split_s": round(split_s, 1),
               "ratio": round(split_s / one_s, 3), "segment_s_each": [round(s, 1) for _, s in done],
               "merge_s": round(merge_s, 1), "segment_s_alone": [round(s, 1) for s in each],
               "projected_s": round(projected, 1), "projected_ratio": round(projected / one_s, 3),
               "serial_share": round(merge_s / projected, 3),
               "same_tracks": same_tracks, "same_verdict": merged["verdict"] == whole["verdict"],
               "max_score_delta": round(max(deltas), 4) if deltas else None,
               "video_score_delta": None if whole["score"] is None else round(abs(merged["score"] - whole["score"]),
                                                                               4)}
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
