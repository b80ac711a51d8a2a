"""End-to-end prediction speed: the official way (reference mode) against our default mode, and memory vs length.

Reference mode is what the official script does: a clip at every frame (stride 1), batch 6, fp32, the detector on
every frame, official tracking. Default mode is ``PredictOptions()`` as the CLI and the service use it. Each run is
a fresh child process, so its peak RSS is its own. Per-stage seconds come from the pipeline's own StageTimer
(decode covers both decoding passes; encode is the annotated video).

A long video (the sample looped and scaled to 720p) is then analysed in default mode at two lengths to show that
peak memory does not grow with the video's length.

Weights are random (seeded): the figures are about speed and memory; the score difference between modes is
reported, but only a trained model makes it meaningful.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ftcn.checkpoints import Checkpoint, model_from_checkpoint  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.models import build_model, config_for_size  # noqa: E402
from ftcn.predict.pipeline import PredictOptions, TrackerMode, predict_video  # noqa: E402
from ftcn.render.annotate import write_annotated_video  # noqa: E402
from ftcn.video.decode import VideoLimits, iter_frames  # noqa: E402
from ftcn.video.encode import VideoWriter  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "ftcn" / "synth" / "media" / "carphone_pristine.mp4"
STAGES = ("decode", "detect", "landmarks", "track", "align", "model", "encode")


def reference_options() -> PredictOptions:
    return PredictOptions(stride=1, batch_size=6, detect_every=1, tracker=TrackerMode.OFFICIAL)


def _run(video: str, size: str, mode: str, annotate: bool, queue: mp.Queue) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    network = build_model(config_for_size(size))
    checkpoint = Checkpoint(network.cfg, network.state_dict(), metadata={"purpose": "benchmark, untrained"})
    model = model_from_checkpoint(checkpoint)
    backend = make_backend("dlib")
    options = reference_options() if mode == "reference" else PredictOptions()
    options = dataclasses.replace(options, limits=VideoLimits(max_duration_s=3600, max_frames=10**6))
    start = time.perf_counter()
    result = predict_video(video, model, checkpoint, backend, options)
    timings = dict(result["timings_s"])
    if annotate:
        with tempfile.TemporaryDirectory() as folder:
            clock = time.perf_counter()
            write_annotated_video(video, result, Path(folder) / "annotated.mp4", options.limits)
            timings["encode"] = time.perf_counter() - clock
    queue.put({
        "mode": mode,
        "wall_s": time.perf_counter() - start,
        "timings": timings,
        "score": result["score"],
        "clips": sum(t["clips"] for t in result["tracks"]),
        "frames": result["input"]["frames_read"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "options": result["options"],
    })


def run(video: Path, size: str, mode: str, annotate: bool = True) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(str(video), size, mode, annotate, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"{mode} run failed with exit code {process.exitcode}")
    return queue.get()


def make_long_video(path: Path, seconds: float, width: int = 1280, height: int = 720) -> Path:
    """Loop the sample forwards and backwards (no jump cuts) and scale it into a 720p frame."""
    frames = [f.rgb for f in iter_frames(SAMPLE)]
    loop = frames + frames[-2:0:-1]
    scale = height / frames[0].shape[0]
    scaled_w = int(round(frames[0].shape[1] * scale))
    left = (width - scaled_w) // 2
    total = int(round(seconds * 29.97))
    with VideoWriter(path, width, height, 29.97, preset="ultrafast") as writer:
        for i in range(total):
            canvas = np.zeros((height, width, 3), dtype=np.uint8)
            canvas[:, left : left + scaled_w] = cv2.resize(loop[i % len(loop)], (scaled_w, height))
            writer.write(canvas)
    return path


def _row(r: dict) -> str:
    stages = " ".join(f"{s}={r['timings'].get(s, 0.0):7.2f}" for s in STAGES)
    score = "None" if r["score"] is None else f"{r['score']:.4f}"
    return (f"{r['mode']:>10} frames={r['frames']:5d} clips={r['clips']:5d} wall={r['wall_s']:8.2f}s "
            f"peakRSS={r['peak_rss_mb']:6.0f}MB score={score}\n{'':>11}{stages}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", choices=["tiny", "small", "full"])
    parser.add_argument("--video", type=Path, default=SAMPLE)
    parser.add_argument("--long-seconds", type=float, default=300.0, help="length of the long video (0: skip)")
    parser.add_argument("--long-model", default="small", choices=["tiny", "small", "full"],
                        help="model for the long-video memory check (full size takes hours on a CPU)")
    parser.add_argument("--skip-compare", action="store_true", help="only the long-video memory check")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    figures: dict = {}
    if not args.skip_compare:
        print(f"model={args.model} (random weights), video={args.video.name}, CPU threads=2")
        reference = run(args.video, args.model, "reference")
        print(_row(reference), flush=True)
        default = run(args.video, args.model, "default")
        print(_row(default), flush=True)
        ratio = reference["wall_s"] / default["wall_s"]
        delta = None
        if reference["score"] is not None and default["score"] is not None:
            delta = abs(reference["score"] - default["score"])
        print(f"speed-up default vs reference: {ratio:.1f}x; |video score difference| = "
              f"{'n/a' if delta is None else f'{delta:.4f}'}; default options: {default['options']}")
        figures.update(reference=reference, default=default, speedup=ratio, score_delta=delta)

    if args.long_seconds > 0:
        with tempfile.TemporaryDirectory() as folder:
            rows = []
            for seconds in (args.long_seconds / 10, args.long_seconds):
                clock = time.perf_counter()
                path = make_long_video(Path(folder) / f"long_{int(seconds)}s.mp4", seconds)
                print(f"made {seconds:.0f} s of 720p in {time.perf_counter() - clock:.0f} s", flush=True)
                row = run(path, args.long_model, "default", annotate=True)
                row["mode"] = f"{seconds:.0f}s 720p"
                print(_row(row), flush=True)
                rows.append(row)
                path.unlink()
            growth = rows[1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
            print(f"peak RSS grows by {growth:+.0f} MB for {rows[1]['frames'] / max(1, rows[0]['frames']):.0f}x "
                  "the frames")
            figures["long"] = rows
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
