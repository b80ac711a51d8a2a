"""``ftcn synth``, ``ftcn preprocess`` and ``ftcn split``: making and organising datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from ftcn.cli.progress import StageBars
from ftcn.cli.standard import (add_dataset_arguments, add_recipe_arguments, chosen_recipe, dataset_options,
                               print_recipe, resolve)
from ftcn.cli.stores import store_at
from ftcn.errors import BadOption
from ftcn.faces.names import BACKENDS, DEFAULT_BACKEND

PREPROCESS_DEFAULTS = {"clip_len": 8, "size": 64, "max_clips": 8, "max_frames": 300}


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
    pre.add_argument("source", help="folder with real/ and fake/, a CSV manifest path,label[,split], or with "
                                    "--dataset a standard dataset's folder as downloaded")
    pre.add_argument("out", help="output folder or s3://bucket/prefix")
    pre.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    pre.add_argument("--retinaface-weights", help="mobilenet0.25_Final.pth (retinaface backend)")
    pre.add_argument("--landmark-weights", help="MobileNet_GDConv .pth.tar (retinaface backend)")
    pre.add_argument("--max-clips", type=int, help="clips kept per video (default 8)")
    pre.add_argument("--max-frames", type=int, help="frames read per video (default 300)")
    pre.add_argument("--face-thres", type=float, default=0.5, help="minimum detector score of a face")
    pre.add_argument("--bbox-thres", "--min-face-size", dest="bbox_thres", type=int, default=40,
                     help="minimum face box side in pixels")
    pre.add_argument("--workers", type=int, default=1, help="worker processes")
    pre.add_argument("--clip-len", type=int, help="frames per clip (default 8; 32 for the full model)")
    pre.add_argument("--size", type=int, help="aligned face size (default 64; 224 for the full model)")
    pre.add_argument("--val", type=float, default=0.1, help="with --dataset: share of training videos made "
                     "validation where the official split has none (Celeb-DF, DFDC)")
    add_dataset_arguments(pre)
    add_recipe_arguments(pre)
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
    from ftcn.datasets.standard import describe, origin, read_dataset

    chosen = chosen_recipe(args)
    sizes = resolve(args, PREPROCESS_DEFAULTS, "preprocess", chosen)
    if min(sizes.values()) < 1:
        raise BadOption("--clip-len, --size, --max-clips and --max-frames must be >= 1")
    cfg = PreprocessConfig(**sizes, face_thres=args.face_thres, bbox_thres=args.bbox_thres,
                           backend=args.backend, retinaface_weights=args.retinaface_weights,
                           landmark_weights=args.landmark_weights)
    print_recipe(chosen)
    described = None
    if args.kind:
        options = dataset_options(args, chosen)
        entries = read_dataset(args.kind, args.source, options)
        counts = describe(entries)
        print(f"{args.kind}: " + "; ".join(f"{split or 'no split'} {c['real']} real, {c['fake']} fake"
                                           for split, c in sorted(counts.items())))
        described = origin(args.kind, entries)
    elif args.methods or args.compression or args.ffpp_root:
        raise BadOption("--methods, --compression and --ffpp-root choose from a standard dataset: give --dataset")
    else:
        entries = load_source(args.source)
    bars = StageBars()
    try:
        summary = preprocess(entries, store_at(args.out), cfg, workers=args.workers,
                             on_video=lambda done, total: bars("videos", done, total), origin=described)
    finally:
        bars.close()
    print(f"{summary.videos} videos: {summary.processed} processed, {summary.skipped} already done, "
          f"{summary.failed} failed; {summary.clips} clips in {args.out}")
    for video, reason in sorted(summary.failures.items()):
        print(f"  failed: {video}: {reason}")
    if args.kind and summary.clips:
        _keep_official_split(args, options, entries)
    return 0


def _keep_official_split(args: argparse.Namespace, options, entries) -> None:
    """split.csv from the dataset's official split, and dataset.json saying which dataset this is."""
    import json

    from ftcn.datasets.split import keep_official_split
    from ftcn.datasets.standard import description

    store = store_at(args.out)
    split = keep_official_split(store, args.val)
    store.put("dataset.json", json.dumps({**description(args.kind, options, entries), "split": split},
                                         indent=2).encode())
    carved = f" (validation: {args.val:.0%} of the training videos, the official split has none)" \
        if split["val_from_train"] else ""
    print("official split kept in split.csv: " + ", ".join(f"{k} {v}" for k, v in split["videos"].items())
          + " videos" + carved)


def run_split(args: argparse.Namespace) -> int:
    from ftcn.datasets.split import split_dataset

    location = args.dataset
    if location.endswith("manifest.csv"):
        location = location[: -len("manifest.csv")].rstrip("/") or "."
    counts = split_dataset(store_at(location), args.val, args.test, args.seed)
    print(f"split by video into {location}/split.csv: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
