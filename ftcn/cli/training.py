"""``ftcn train`` and ``ftcn evaluate``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ftcn.cli.progress import StageBars
from ftcn.errors import BadOption


def add_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="fine-tune FTCN+TT on a preprocessed, split dataset")
    train.add_argument("dataset", help="preprocessed dataset folder or s3:// prefix")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--init", help="start from a checkpoint (ours or the official ftcn_tt.pth)")
    train.add_argument("--freeze", action="store_true", help="train only the temporal transformer head")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--model-size", choices=["tiny", "small", "full"], default="tiny")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--accumulate", type=int, default=1, help="gradient accumulation steps")
    train.add_argument("--class-weighting", action="store_true", help="weight the loss by inverse class frequency")
    train.add_argument("--workers", type=int, default=0, help="data loader processes")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--split", dest="split_file", help="a video,split CSV (train/val/test per video) to use "
                       "instead of the dataset's split.csv")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on a dataset split, or on raw videos "
                                                    "(a CSV of path,label[,method] or a real/+fake/ folder): "
                                                    "video-level AUC, accuracy, false positives, per method")
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("dataset", help="a preprocessed dataset (folder or s3://), or raw labelled videos")
    evaluate.add_argument("--split", choices=["train", "val", "test"], default="test")
    evaluate.add_argument("--out", type=Path, help="folder for evaluation.json and roc.png")
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    evaluate.set_defaults(run=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from ftcn.training.train import TrainConfig, train

    if min(args.epochs, args.batch_size, args.accumulate) < 1 or args.lr <= 0:
        raise BadOption("--epochs, --batch-size and --accumulate must be >= 1 and --lr > 0")
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, model_size=args.model_size,
                      init=args.init, freeze=args.freeze, seed=args.seed, accumulate=args.accumulate,
                      class_weighting=args.class_weighting, workers=args.workers, device=args.device,
                      resume=args.resume, split_file=args.split_file)
    bars = StageBars()
    try:
        summary = train(args.dataset, args.out, cfg, progress=bars)
    finally:
        bars.close()
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return 0
    best = summary["best_val"] or {}
    print(f"trained {summary['epochs_run']} epochs in {summary['seconds']:.0f} s; best epoch {summary['best_epoch']}: "
          f"val video AUC {best.get('video', {}).get('auc')}, clip AUC {best.get('clip', {}).get('auc')}; "
          f"checkpoint {args.out / 'best.pt'}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ftcn.training.evaluate import evaluate

    source = Path(args.dataset)
    if source.suffix.lower() == ".csv" or ((source / "real").is_dir() and (source / "fake").is_dir()):
        return _evaluate_videos(args, source)
    result = evaluate(args.checkpoint, args.dataset, args.split, args.out, args.device)
    print(json.dumps({k: result[k] for k in ("split", "threshold", "clip", "video")}, indent=2))
    return 0


def _evaluate_videos(args: argparse.Namespace, source: Path) -> int:
    """Raw videos: the batch predictor with its defaults, resumable in --out; the per-method report."""
    from ftcn.cli.predict import build_parser_defaults, score_videos

    options = build_parser_defaults(weights=args.checkpoint, device=args.device, no_video=True)
    report = score_videos(options, [source], args.out or Path("ftcn-evaluate"), show=False)
    print(json.dumps(report, indent=2))
    return 0
