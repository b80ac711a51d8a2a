"""``ftcn train`` and ``ftcn evaluate``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ftcn.cli.progress import StageBars
from ftcn.cli.standard import (add_dataset_arguments, add_recipe_arguments, chosen_recipe, dataset_options,
                               print_recipe, resolve)
from ftcn.cli.stores import store_at
from ftcn.datasets.standard import dataset_kinds
from ftcn.errors import BadOption, DatasetError

TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 8, "lr": 1e-3, "optimizer": "adamw", "lr_step": 0, "max_steps": None,
                  "erase_prob": 0.0, "model_size": "tiny", "freeze": False, "class_weighting": False,
                  "weight_decay": 0.01, "lr_gamma": 0.1}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="fine-tune FTCN+TT on a preprocessed, split dataset")
    train.add_argument("dataset", help="preprocessed dataset folder or s3:// prefix")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--init", help="start from a checkpoint (ours or the official ftcn_tt.pth)")
    train.add_argument("--freeze", action="store_true", default=None,
                       help="train only the temporal transformer head")
    train.add_argument("--epochs", type=int, help="default 10")
    train.add_argument("--batch-size", type=int, help="default 8")
    train.add_argument("--lr", type=float, help="default 1e-3")
    train.add_argument("--optimizer", choices=["adamw", "adam", "sgd"], help="default adamw")
    train.add_argument("--weight-decay", type=float, help="default 0.01")
    train.add_argument("--lr-step", type=int, help="multiply the learning rate by --lr-gamma every N steps")
    train.add_argument("--lr-gamma", type=float, help="default 0.1")
    train.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    train.add_argument("--erase-prob", type=float, help="chance of erasing a black rectangle from a clip")
    train.add_argument("--model-size", choices=["tiny", "small", "full"], help="default tiny")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--accumulate", type=int, default=1, help="gradient accumulation steps")
    train.add_argument("--class-weighting", action="store_true", default=None,
                       help="weight the loss by inverse class frequency")
    train.add_argument("--workers", type=int, default=0, help="data loader processes")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--split", dest="split_file", help="a video,split CSV (train/val/test per video) to use "
                       "instead of the dataset's split.csv")
    train.add_argument("--dataset", dest="kind", choices=dataset_kinds(),
                       help="require the dataset to be this standard dataset, preprocessed with --dataset (its "
                            "official split is then what trains and validates)")
    train.add_argument("--no-precision-check", action="store_true",
                       help="do not judge bf16 and int8 on the validation videos after training (best.pt then "
                            "runs in fp32 unless --precision says otherwise)")
    add_recipe_arguments(train)
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on a dataset split, or on raw videos "
                                                    "(a CSV of path,label[,method] or a real/+fake/ folder): "
                                                    "video-level AUC, accuracy, false positives, per method")
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("dataset", help="a preprocessed dataset (folder or s3://), or raw labelled videos")
    evaluate.add_argument("--split", choices=["train", "val", "test"], default="test")
    evaluate.add_argument("--out", type=Path, help="folder for evaluation.json and roc.png")
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    add_dataset_arguments(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    check = commands.add_parser(
        "check-precision", help="judge bf16 and int8 against fp32 on a model's own labelled videos (verdicts and "
                                "AUC) and record the precisions that pass, with the int8 graph, in a checkpoint")
    check.add_argument("checkpoint", type=Path, help="ours, or the official ftcn_tt.pth")
    check.add_argument("dataset", help="a preprocessed, split dataset (folder or s3://) of labelled videos")
    check.add_argument("--split", default="val", help="the videos judged on (default val; never the training ones)")
    check.add_argument("--calibrate-split", default="train", help="the clips int8 is calibrated on (default train)")
    check.add_argument("--out", type=Path, help="write the checked checkpoint here (default: only print the table)")
    check.set_defaults(run=run_check_precision)


def run_train(args: argparse.Namespace) -> int:
    from ftcn.training.train import TrainConfig, train

    chosen = chosen_recipe(args)
    values = resolve(args, TRAIN_DEFAULTS, "train", chosen)
    if min(values["epochs"], values["batch_size"], args.accumulate) < 1 or values["lr"] <= 0:
        raise BadOption("--epochs, --batch-size and --accumulate must be >= 1 and --lr > 0")
    if not 0 <= values["erase_prob"] <= 1 or (values["max_steps"] is not None and values["max_steps"] < 1):
        raise BadOption("--erase-prob must be within 0-1 and --max-steps >= 1")
    if args.kind:
        _require_kind(args.dataset, args.kind)
    print_recipe(chosen)
    cfg = TrainConfig(**values, init=args.init, seed=args.seed, accumulate=args.accumulate, workers=args.workers,
                      device=args.device, resume=args.resume, split_file=args.split_file,
                      check_precisions=not args.no_precision_check,
                      recipe=chosen.name if chosen is not None else None)
    bars = StageBars()
    try:
        summary = train(store_at(args.dataset), args.out, cfg, progress=bars)
    finally:
        bars.close()
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return 0
    best = summary["best_val"] or {}
    print(f"trained {summary['epochs_run']} epochs in {summary['seconds']:.0f} s; best epoch {summary['best_epoch']}: "
          f"val video AUC {best.get('video', {}).get('auc')}, clip AUC {best.get('clip', {}).get('auc')}; "
          f"checkpoint {args.out / 'best.pt'}")
    return 0


def _evaluate_standard(args: argparse.Namespace) -> int:
    """A standard dataset's videos of one split, scored as raw videos with the predict pipeline's defaults."""
    from ftcn.cli.predict import build_parser_defaults, report_rows, score_items
    from ftcn.datasets.standard import read_dataset
    from ftcn.predict.batch import items_of

    entries = [e for e in read_dataset(args.kind, args.dataset, dataset_options(args)) if e.split == args.split]
    if not entries:
        raise DatasetError(f"{args.kind}: no videos in the {args.split!r} split")
    options = build_parser_defaults(weights=args.checkpoint, device=args.device, no_video=True)
    out = args.out or Path("ftcn-evaluate")
    report = report_rows(score_items(options, items_of(entries), out, show=False), out, show=False)
    print(json.dumps(report, indent=2))
    return 0


def _require_kind(dataset: str, kind: str) -> None:
    """The dataset must be the named standard dataset, preprocessed with its official split."""
    store = store_at(dataset)
    described = json.loads(store.get("dataset.json")) if store.exists("dataset.json") else {}
    if described.get("kind") != kind:
        found = f"was preprocessed from {described['kind']}" if described else "was not preprocessed with --dataset"
        raise DatasetError(f"{dataset} {found}; preprocess {kind} with `ftcn preprocess --dataset {kind} ROOT OUT`")


def run_evaluate(args: argparse.Namespace) -> int:
    from ftcn.training.evaluate import evaluate

    if args.kind:
        return _evaluate_standard(args)
    source = Path(args.dataset)
    if source.suffix.lower() == ".csv" or ((source / "real").is_dir() and (source / "fake").is_dir()):
        return _evaluate_videos(args, source)
    result = evaluate(args.checkpoint, store_at(args.dataset), args.split, args.out, args.device)
    print(json.dumps({k: result[k] for k in ("split", "threshold", "clip", "video")}, indent=2))
    return 0


def _evaluate_videos(args: argparse.Namespace, source: Path) -> int:
    """Raw videos: the batch predictor with its defaults, resumable in --out; the per-method report."""
    from ftcn.cli.predict import build_parser_defaults, score_videos

    options = build_parser_defaults(weights=args.checkpoint, device=args.device, no_video=True)
    report = score_videos(options, [source], args.out or Path("ftcn-evaluate"), show=False)
    print(json.dumps(report, indent=2))
    return 0


def add_protocol_parser(commands: argparse._SubParsersAction) -> None:
    from ftcn.cli.predict import pipeline_arguments

    protocol = commands.add_parser(
        "protocol", help="the paper's cross-dataset table: video-level AUC (and EER, AP) on the test videos of "
                         "Celeb-DF, DFDC, FaceShifter and DeeperForensics, beside the paper's figures")
    protocol.add_argument("model", type=Path, help="the checkpoint: ours or the official ftcn_tt.pth")
    pipeline_arguments(protocol)  # how videos are analysed (backend, stride, runtime, ...), as ftcn predict
    protocol.add_argument("--ffpp", type=Path, help="FaceForensics++'s folder (the FaceShifter column)")
    protocol.add_argument("--celebdf", type=Path, help="Celeb-DF v2's folder")
    protocol.add_argument("--dfdc", type=Path, help="DFDC's folder (its test set)")
    protocol.add_argument("--dfo", type=Path, help="DeeperForensics-1.0's folder (its reals come from --ffpp)")
    protocol.add_argument("--compression", choices=["raw", "c23", "c40"], default="c23")
    protocol.add_argument("--variant", default="end_to_end", help="DeeperForensics: manipulated_videos/<variant>")
    protocol.add_argument("--out", type=Path, default=Path("ftcn-protocol"),
                          help="per-video results, protocol.json and protocol.md (a rerun resumes)")
    protocol.set_defaults(run=run_protocol, no_video=True)


def run_protocol(args: argparse.Namespace) -> int:
    from ftcn.cli.predict import score_items
    from ftcn.datasets.standard import DatasetOptions
    from ftcn.predict.protocol import format_table, plan, table

    roots = {kind: path for kind, path in (("ffpp", args.ffpp), ("celebdf", args.celebdf), ("dfdc", args.dfdc),
                                           ("dfo", args.dfo)) if path is not None}
    if not roots:
        raise BadOption("give at least one dataset: --ffpp, --celebdf, --dfdc or --dfo")
    options = DatasetOptions(compression=args.compression, ffpp_root=args.ffpp, variant=args.variant)
    items, members = plan(roots, options)
    args.weights, args.no_video = args.model, True
    rows = score_items(args, items, args.out / "videos", show=False)
    lines = table(rows, members)
    text = format_table(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "protocol.json").write_text(json.dumps({"model": str(args.model), "benchmarks": lines}, indent=2))
    (args.out / "protocol.md").write_text(text + "\n")
    from ftcn.cards import card_from_checkpoint, card_line
    from ftcn.checkpoints import load_checkpoint

    print(card_line(args.model.name, card_from_checkpoint(load_checkpoint(args.model))))
    print("video-level figures in percent; the paper's column is FTCN+TT trained on FaceForensics++ c23")
    print(text)
    return 0


def run_check_precision(args: argparse.Namespace) -> int:
    from ftcn.checkpoints import load_checkpoint
    from ftcn.precision import fastest_passed
    from ftcn.precision_check import check_checkpoint, save_checked, table_lines

    if args.split == args.calibrate_split:
        raise BadOption("--split and --calibrate-split must differ: a precision is never judged on the clips it was "
                        "calibrated on")
    checked, table = check_checkpoint(load_checkpoint(args.checkpoint), store_at(args.dataset), args.split,
                                      args.calibrate_split)
    print("\n".join(table_lines(table)))
    passed = checked.metadata["precision"]["passed"]
    print(f"passes: {', '.join(passed)}; the checked checkpoint runs in {fastest_passed(passed).value} by default")
    if args.out:
        save_checked(args.out, checked)
        print(f"recorded in {args.out}: predictions run in the fastest of them unless --precision says otherwise")
    return 0
