"""End-to-end prediction speed: the official way (reference mode), our default, fixed strides, and the limit.

- reference: what the official script does: a clip at every frame (stride 1), batch 6, the detector on every
  frame, official tracking (two decodes);
- default: ``PredictOptions()`` as the CLI and the service use it (one decode, ftcn.predict.stream; the adaptive
  pass, ftcn.predict.adaptive; faces scanned where following needs it, ftcn.faces.scan);
- default borderline: the default on a video whose every track is borderline (the checkpoint's inconclusive band
  covers the whole scale), so the adaptive pass looks at every track again: its worst case;
- half clip: clips every half clip on every track (the default before the adaptive pass);
- one pass: clips every clip length on every track, so the model sees each frame once;
- limit: one pass per frame with detection only on the first frame, the face followed from there (valid for a
  video whose faces are all there from the start, as the sample's is). It is the floor of this pipeline: the
  fewest clips that cover every frame, and the least face finding.

Any mode but the reference may end with a precision, ``bf16`` or ``int8`` ("default int8", "limit int8"): the
same run in that arithmetic (int8 quantized before the clock), with its own limit row for honest ratios.

``--looped S`` compares the modes on the sample looped forwards and backwards to S seconds and scaled to 720p
(issue 27's 10-s talking head: ``--looped 10``).

Each run is a fresh child process (its peak RSS is its own) that prepares and warms the model's engine (one
forward pass per thread count) before the clock starts, as a worker has it after its first job (``engine`` is that
preparation). Seconds per stage come from the pipeline's StageTimer; stages overlap in the one-decode modes
(decode, detect and align run beside the model), so they add up to more than the wall time; ``model_idle`` is the
time the model waited for clips. ``annotate`` is the annotated video, with its share of the whole job.

A long video (the sample looped and scaled to 720p) is then analysed at two lengths (default mode; ``--long-modes``
adds others) to show that peak memory does not grow with the video's length, with the share of its frames in a
tracked face.

Every mode, the reference's included, finds faces with ``--backend`` (the product's default, MTCNN, unless told):
the official detector's weights are not to be had here, so the ratios compare procedures on one detector. (Until
2026-12-07 this script used the dlib backend whatever the product's default was.)

Weights are random (seeded): the figures are about speed and memory; the score difference between modes is
reported, but only a trained model makes it meaningful (bench/bench_one_pass.py). How fast the default is depends
on how clear a video is to the model (the adaptive pass looks again at borderline tracks), so it is measured both
ways: "default" with the official operating point (the sample is clear to these weights) and "default borderline".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import torch  # noqa: E402
from children import in_child  # noqa: E402

from ftcn.checkpoints import OFFICIAL_FTCN_THRESHOLD, Checkpoint, model_from_checkpoint  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.names import DEFAULT_BACKEND, DLIB, MTCNN  # noqa: E402
from ftcn.models import build_model, config_for_size  # noqa: E402
from ftcn.predict.pipeline import PredictOptions, TrackerMode, predict_video  # noqa: E402
from ftcn.render.annotate import write_annotated_video  # noqa: E402
from ftcn.quantize import int8_graph  # noqa: E402
from ftcn.runtime import engine_for, threads_beside  # noqa: E402
from ftcn.video.cage import Cage  # noqa: E402
from ftcn.video.decode import VideoLimits  # noqa: E402
from ftcn.synth.generate import looped_sample  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "ftcn" / "synth" / "media" / "carphone_pristine.mp4"
STAGES = ("decode", "detect", "landmarks", "track", "align", "model", "model_idle", "annotate")
MODES = ("reference", "default", "half clip", "one pass", "limit")


def reference_options() -> PredictOptions:
    return PredictOptions(stride=1, batch_size=6, detect_every=1, tracker=TrackerMode.OFFICIAL)


PRECISIONS = ("bf16", "int8")


def split_mode(mode: str) -> tuple[str, str]:
    """("default int8") -> ("default", "int8"): any mode but the reference may name its precision last."""
    base, _, last = mode.rpartition(" ")
    return (base, last) if last in PRECISIONS and base != "reference" else (mode, "auto")


def options_for(mode: str, clip_len: int) -> PredictOptions:
    mode, precision = split_mode(mode)
    if precision != "auto":
        return dataclasses.replace(options_for(mode, clip_len), precision=precision)
    if mode == "reference":
        return reference_options()
    if mode in ("default", "default caged", "default borderline"):
        return PredictOptions()
    if mode == "half clip":
        return PredictOptions(stride=max(1, clip_len // 2))
    if mode == "one pass":
        return PredictOptions(stride=clip_len)
    if mode == "limit":
        return PredictOptions(stride=clip_len, detect_every=10**9)
    raise ValueError(mode)


def _run(video: str, size: str, mode: str, annotate: bool, backend_name: str) -> dict:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    network = build_model(config_for_size(size))
    # The official operating point, as ftcn_tt.pth gets it: these random weights score the sample's clips 0.45-0.46,
    # far above it and all on one side, so the video is clear to this model; "default borderline" puts every score
    # in the inconclusive band instead, so that every track is looked at again (the adaptive pass's worst case).
    band = (1e-6, 1 - 1e-6) if split_mode(mode)[0] == "default borderline" else None
    checkpoint = Checkpoint(network.cfg, network.state_dict(), OFFICIAL_FTCN_THRESHOLD,
                            metadata={"purpose": "benchmark, untrained"}, band=band)
    model = model_from_checkpoint(checkpoint)
    backend = make_backend(backend_name)
    options = dataclasses.replace(options_for(mode, model.cfg.clip_len),
                                  limits=VideoLimits(max_duration_s=3600, max_frames=10**6,
                                                     cage=Cage() if mode.endswith("caged") else None))
    clock = time.perf_counter()
    cfg = model.cfg
    if options.precision == "int8":  # random weights: calibrated on random clips, for the speed alone
        int8_graph(model, [torch.randn(1, 3, cfg.clip_len, cfg.image_size, cfg.image_size).numpy()
                           for _ in range(8)])
    engine = engine_for(model, options.runtime, options.precision)  # cached: predict_video finds it ready
    warm = torch.zeros(1, 3, cfg.clip_len, cfg.image_size, cfg.image_size)
    for threads in (None, threads_beside()):  # a worker's engine is warm after its first job
        engine(warm, threads)
    engine_s = time.perf_counter() - clock
    start = time.perf_counter()
    result = predict_video(video, model, checkpoint, backend, options)
    timings = dict(result["timings_s"])
    if annotate:
        with tempfile.TemporaryDirectory() as folder:
            clock = time.perf_counter()
            write_annotated_video(video, result, Path(folder) / "annotated.mp4", options.limits)
            timings["annotate"] = time.perf_counter() - clock
    wall = time.perf_counter() - start
    coverage = result["coverage"]
    return {
        "mode": mode,
        "wall_s": wall,
        "engine_s": engine_s,
        "timings": timings,
        "annotate_share": timings.get("annotate", 0.0) / wall,
        "score": result["score"],
        "clips": sum(t["clips"] for t in result["tracks"]),
        "looked_again": sum(bool(t.get("looked_again")) for t in result["tracks"]),
        "frames": result["input"]["frames_read"],
        "tracked_share": coverage["frames_with_faces"] / max(1, coverage["frames"]),
        "judged_share": coverage["share"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "options": result["options"],
    }


def run(video: Path, size: str, mode: str, annotate: bool = True, backend: str = DEFAULT_BACKEND) -> dict:
    row = in_child(_run, str(video), size, mode, annotate, backend)
    if "error" in row:
        raise SystemExit(f"{mode} run failed with {row['error']}")
    return row


def make_long_video(path: Path, seconds: float, width: int = 1280, height: int = 720) -> Path:
    """Loop the sample forwards and backwards (no jump cuts) and scale it into a 720p frame."""
    return looped_sample(path, seconds, width, height)


def _row(r: dict) -> str:
    stages = " ".join(f"{s}={r['timings'].get(s, 0.0):.2f}" for s in STAGES)
    score = "None" if r["score"] is None else f"{r['score']:.4f}"
    return (f"{r['mode']:>10} frames={r['frames']:5d} clips={r['clips']:5d} (tracks looked at again: "
            f"{r.get('looked_again', 0)}) wall={r['wall_s']:8.2f}s "
            f"peakRSS={r['peak_rss_mb']:6.0f}MB score={score} tracked={r['tracked_share']:.1%} "
            f"annotate={r['annotate_share']:.1%} (engine {r['engine_s']:.1f}s before the clock)\n{'':>11}{stages}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", choices=["tiny", "small", "full"])
    parser.add_argument("--video", type=Path, default=SAMPLE)
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=[MTCNN, DLIB],
                        help="face backend of every mode, the reference's included (default: the product's)")
    parser.add_argument("--looped", type=float, default=0.0,
                        help="compare on the sample looped to this many seconds at 720p instead of --video")
    parser.add_argument("--long-seconds", type=float, default=300.0, help="length of the long video (0: skip)")
    parser.add_argument("--long-model", default="small", choices=["tiny", "small", "full"],
                        help="model for the long-video memory check (full size takes hours on a CPU)")
    parser.add_argument("--modes", default=",".join(MODES), help="modes compared on --video")
    parser.add_argument("--long-modes", default="default", help="modes run on the long video")
    parser.add_argument("--skip-compare", action="store_true", help="only the long-video memory check")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    figures: dict = {}
    workdir = tempfile.TemporaryDirectory()
    if args.looped:
        args.video = make_long_video(Path(workdir.name) / f"looped_{args.looped:g}s_720p.mp4", args.looped)
    if not args.skip_compare:
        print(f"model={args.model} (random weights), video={args.video.name}, backend={args.backend}, CPU threads=2")
        rows = {}
        for mode in args.modes.split(","):
            rows[mode] = run(args.video, args.model, mode, backend=args.backend)
            print(_row(rows[mode]), flush=True)
        figures["rows"] = rows
        ratios = {}
        for slower, faster in (("default caged", "default"), ("reference", "default"),
                               *(("reference", f"default {p}") for p in PRECISIONS),
                               *((f"default {p}", f"limit {p}") for p in PRECISIONS),
                               ("reference", "default borderline"), ("reference", "half clip"),
                               ("reference", "one pass"), ("default", "limit"), ("half clip", "limit"),
                               ("one pass", "limit"), ("reference", "limit")):
            if slower in rows and faster in rows:
                ratios[f"{slower} / {faster}"] = rows[slower]["wall_s"] / rows[faster]["wall_s"]
        for name, ratio in ratios.items():
            print(f"wall time {name}: {ratio:.2f}x")
        figures["ratios"] = ratios

    if args.long_seconds > 0:
        with tempfile.TemporaryDirectory() as folder:
            rows = []
            for seconds in (args.long_seconds / 10, args.long_seconds):
                clock = time.perf_counter()
                path = make_long_video(Path(folder) / f"long_{int(seconds)}s.mp4", seconds)
                print(f"made {seconds:.0f} s of 720p in {time.perf_counter() - clock:.0f} s", flush=True)
                for mode in args.long_modes.split(","):
                    row = run(path, args.long_model, mode, annotate=True, backend=args.backend)
                    row["mode"] = f"{seconds:.0f}s 720p {mode}"
                    print(_row(row), flush=True)
                    rows.append(row)
                path.unlink()
            modes = len(args.long_modes.split(","))
            for short, long in zip(rows[:modes], rows[modes:]):
                print(f"{long['mode']}: peak RSS grows by {long['peak_rss_mb'] - short['peak_rss_mb']:+.0f} MB for "
                      f"{long['frames'] / max(1, short['frames']):.0f}x the frames")
            figures["long"] = rows
    workdir.cleanup()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
