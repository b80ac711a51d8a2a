"""How the models generalize to forgery methods they never saw: train on one set of methods, test on each method.

For the tiny and small models, trains on three sets of synthetic fakes (the paste artifacts, face swaps, and the
mix of all), each with the same kinds of real videos (talking faces, a photo and a group photo under a moving
camera), then scores one held-out set with every method through ``ftcn predict`` on its labels.csv: video-level
AUC, accuracy at the model's own threshold, and the false-positive rate on the real videos, per method. Every
step is the public command line, with fixed seeds, so the table in docs/benchmarks.md is reproduced by

    .venv/bin/python bench/bench_quality.py            # about 15 minutes on 2 CPU cores

and ``--out`` keeps every artifact (datasets, checkpoints, per-video results, report.json files).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftcn.cli import main as ftcn  # noqa: E402
from ftcn.synth.generate import ARTIFACTS, METHODS  # noqa: E402

TRAIN_SETS = {"paste": ",".join(ARTIFACTS), "faceswap": "faceswap", "mix": ",".join(METHODS)}
SIZES = ("tiny", "small")
TRAIN_SEED, TEST_SEED = 2, 99


def run(step: list[str]) -> None:
    code = ftcn(step)
    if code != 0:
        raise SystemExit(f"ftcn {' '.join(step)} failed with {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="keep everything here (default: a temporary folder)")
    parser.add_argument("--train-videos", type=int, default=40)
    parser.add_argument("--test-videos", type=int, default=30, help="half real, the fakes spread over the methods")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--train-seed", type=int, default=TRAIN_SEED,
                        help="seed of the synthetic training videos (another seed, other models)")
    parser.add_argument("--fit-seed", type=int, default=0, help="seed of the split and the training")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="ftcn-quality-"))
    started = time.perf_counter()
    test = work / "test"
    if not (test / "labels.csv").exists():
        run(["synth", str(test), "--videos", str(args.test_videos), "--seed", str(TEST_SEED), "--methods",
             ",".join(METHODS)])
    table = []
    for name, methods in TRAIN_SETS.items():
        data = work / f"train-{name}"
        if not (data / "clips" / "split.csv").exists():
            run(["synth", str(data / "videos"), "--videos", str(args.train_videos), "--seed", str(args.train_seed),
                 "--methods", methods])
            run(["preprocess", str(data / "videos"), str(data / "clips"), "--workers", "2"])
            run(["split", str(data / "clips"), "--val", "0.25", "--seed", str(args.fit_seed)])
        for size in args.sizes.split(","):
            model = data / f"model-{size}"
            if not (model / "best.pt").exists():
                shutil.rmtree(model, ignore_errors=True)
                run(["train", str(data / "clips"), "--out", str(model), "--epochs", str(args.epochs), "--seed",
                 str(args.fit_seed), "--model-size", size])
            scored = data / f"test-{size}"
            run(["predict", str(test / "labels.csv"), "--weights", str(model / "best.pt"), "--out", str(scored),
                 "--no-video"])
            report = json.loads((scored / "report.json").read_text())
            with open(scored / "summary.csv", newline="") as handle:
                doubtful = [row for row in csv.DictReader(handle) if row["verdict"] == "INCONCLUSIVE"]
            table.append({"size": size, "trained_on": name, "train_methods": methods, **report,
                          "inconclusive_videos": doubtful})
    (work / "quality.json").write_text(json.dumps(table, indent=2))
    print(f"\nseeds: train synth {args.train_seed}, test synth {TEST_SEED}, split and training {args.fit_seed}; "
          f"{args.train_videos} training and {args.test_videos} test videos; {args.epochs} epochs; "
          f"{time.perf_counter() - started:.0f} s; everything in {work}\n")
    print(markdown(table))
    print()
    print(inconclusive_list(table))
    return 0


def _cell(figures: dict | None) -> str:
    if not figures or figures.get("auc") is None:
        return "n/a"
    return f"{figures['auc']:.2f} / {figures['accuracy']:.2f}"


def markdown(table: list[dict]) -> str:
    """Rows: model size and training set; columns: test method (video AUC / accuracy), the FPR on reals, and how
    many test videos were INCONCLUSIVE (``inconclusive_list`` names them)."""
    header = "| model | trained on | " + " | ".join(METHODS) + " | all | false positives on reals | inconclusive |"
    lines = [header, "|" + "---|" * (len(METHODS) + 5)]
    for row in table:
        cells = [_cell(row["methods"].get(method)) for method in METHODS]
        fpr = row["overall"]["false_positive_rate"]
        unseen = "" if row["trained_on"] == "mix" else " (unseen: " + ", ".join(
            m for m in METHODS if m not in row["train_methods"].split(",")) + ")"
        lines.append(f"| {row['size']} | {row['trained_on']}{unseen} | " + " | ".join(cells)
                     + f" | {_cell(row['overall'])} | {fpr:.2f} | {len(row['inconclusive_videos'])} |")
    return "\n".join(lines)


def inconclusive_list(table: list[dict]) -> str:
    """Every test video a model scored INCONCLUSIVE, with its label, score and reasons."""
    lines = ["| model | trained on | video | label | score | reasons |", "|---|---|---|---|---|---|"]
    for row in table:
        for video in row["inconclusive_videos"]:
            lines.append(f"| {row['size']} | {row['trained_on']} | {video['video']} | {video['label']} | "
                         f"{float(video['score']):.3f} | {video['reasons'].replace('|', '/')} |")
    return "\n".join(lines) if len(lines) > 2 else "(no test video was INCONCLUSIVE)"


if __name__ == "__main__":
    raise SystemExit(main())
