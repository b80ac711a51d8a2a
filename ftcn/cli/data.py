"""``ftcn synth``, ``ftcn preprocess`` and ``ftcn split``: making and organising datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from ftcn.cli.progress import StageBars
from ftcn.errors import BadOption


def add_parsers(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="make a labelled synthetic real/fake video set")
    synth.add_argument("out", type=Path)
    synth.add_argument("--videos", type=int, default=12, help="number of videos, half real and half fake")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--frames", type=int, default=48, help="frames per video")
    synth.add_argument("--methods", help="forgery methods of the fakes, in turn: a comma-separated list of "
                                         "jitter, flicker, mask, stutter, faceswap (default: the classic mix of "
                                         "paste artifacts)")
    synth.set_defaults(run=run_synth)

    pre = commands.add_parser("preprocess", help="videos -> aligned uint8 face clips and a manifest")
    pre.add_argument("source", help="folder with real/ and fake/, or a CSV manifest path,label[,split]")
    pre.add_argument("out", help="output folder or s3://bucket/prefix")
    pre.add_argument("--backend", choices=["dlib", "retinaface"], default="dlib")
    pre.add_argument("--retinaface-weights", help="mobilenet0.25_Final.pth (retinaface backend)")
    pre.add_argument("--landmark-weights", help="MobileNet_GDConv .pth.tar (retinaface backend)")
    pre.add_argument("--max-clips", type=int, default=8, help="clips kept per video")
    pre.add_argument("--max-frames", type=int, default=300, help="frames read per video")
    pre.add_argument("--face-thres", type=float, default=0.5, help="minimum detector score of a face")
    pre.add_argument("--bbox-thres", "--min-face-size", dest="bbox_thres", type=int, default=40,
                     help="minimum face box side in pixels")
    pre.add_argument("--workers", type=int, default=1, help="worker processes")
    pre.add_argument("--clip-len", type=int, default=8, help="frames per clip (32 for the full model)")
    pre.add_argument("--size", type=int, default=64, help="aligned face size (224 for the full model)")
    pre.set_defaults(run=run_preprocess)

    split = commands.add_parser("split", help="train/val/test split by video, stratified by label")
    split.add_argument("dataset", help="preprocessed dataset (folder or s3://), or its manifest.csv")
    split.add_argument("--val", type=float, default=0.2)
    split.add_argument("--test", type=float, default=0.1)
    split.add_argument("--seed", type=int, default=0)
    split.set_defaults(run=run_split)


def run_synth(args: argparse.Namespace) -> int:
    from ftcn.synth.generate import generate, parse_methods

    if args.videos < 2 or args.frames < 8:
        raise BadOption("--videos must be at least 2 and --frames at least 8")
    out = generate(args.out, args.videos, args.seed, frames=args.frames, methods=parse_methods(args.methods))
    print(f"wrote {args.videos} videos to {out} (manifest.csv, labels.csv, synth.json)")
    return 0


def run_preprocess(args: argparse.Namespace) -> int:
    from ftcn.datasets.preprocess import PreprocessConfig, preprocess
    from ftcn.datasets.sources import load_source

    cfg = PreprocessConfig(clip_len=args.clip_len, size=args.size, max_clips=args.max_clips,
                           max_frames=args.max_frames, face_thres=args.face_thres, bbox_thres=args.bbox_thres,
                           backend=args.backend, retinaface_weights=args.retinaface_weights,
                           landmark_weights=args.landmark_weights)
    bars = StageBars()
    try:
        summary = preprocess(load_source(args.source), args.out, cfg, workers=args.workers,
                             on_video=lambda done, total: bars("videos", done, total))
    finally:
        bars.close()
    print(f"{summary.videos} videos: {summary.processed} processed, {summary.skipped} already done, "
          f"{summary.failed} failed; {summary.clips} clips in {args.out}")
    for video, reason in sorted(summary.failures.items()):
        print(f"  failed: {video}: {reason}")
    return 0


def run_split(args: argparse.Namespace) -> int:
    from ftcn.datasets.split import split_dataset
    from ftcn.datasets.storage import open_store

    location = args.dataset
    if location.endswith("manifest.csv"):
        location = location[: -len("manifest.csv")].rstrip("/") or "."
    counts = split_dataset(open_store(location), args.val, args.test, args.seed)
    print(f"split by video into {location}/split.csv: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
