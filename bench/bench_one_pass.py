"""Does one pass per frame (clips every clip length, each frame seen by one clip) move trained models' video scores?

The rule (issue 17): one pass per frame becomes the default only if, with trained tiny and small models over
synthetic held-out videos, the video score moves by at most 0.01 against the reference mode (the official way:
a clip at every frame, detection on every frame, the official tracker). Random weights say nothing here, so the
models are trained first: the face-swap training set of ``bench/bench_quality.py`` (same seeds and sizes; an
existing ``--work`` folder of that benchmark is reused), tested on its held-out set of every method.

Each video is scored four ways: reference; our tracker with a clip at every frame (what the tracker alone moves);
the default; one pass per frame. Printed per model: |score - reference| (max, mean, median), the same against
"every frame", video AUC and verdicts that differ from the reference's, and the decision.

    .venv/bin/python bench/bench_one_pass.py                      # about 25 minutes on 2 CPU cores
    .venv/bin/python bench/bench_one_pass.py --work /tmp/quality  # reuse bench_quality.py --out /tmp/quality
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_predict import reference_options  # noqa: E402
from bench_quality import SIZES, TEST_SEED, TRAIN_SEED, run  # noqa: E402

from ftcn.checkpoints import load_checkpoint, model_from_checkpoint  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.predict.pipeline import PredictOptions, predict_video  # noqa: E402
from ftcn.synth.generate import METHODS  # noqa: E402
from ftcn.training.metrics import roc_auc  # noqa: E402

#: The largest move of a video score that one pass per frame may cause to become the default.
ALLOWED_MOVE = 0.01


def modes(clip_len: int) -> dict[str, PredictOptions]:
    return {
        "reference": reference_options(),
        "every frame": PredictOptions(stride=1),
        "default": PredictOptions(),
        "one pass": PredictOptions(stride=clip_len),
    }


def prepare(work: Path, train_videos: int, test_videos: int, epochs: int, sizes: list[str]) -> dict[str, Path]:
    """bench_quality's face-swap models and held-out set, made if missing."""
    test = work / "test"
    if not (test / "labels.csv").exists():
        run(["synth", str(test), "--videos", str(test_videos), "--seed", str(TEST_SEED), "--methods",
             ",".join(METHODS)])
    data = work / "train-faceswap"
    if not (data / "clips" / "split.csv").exists():
        run(["synth", str(data / "videos"), "--videos", str(train_videos), "--seed", str(TRAIN_SEED), "--methods",
             "faceswap"])
        run(["preprocess", str(data / "videos"), str(data / "clips"), "--workers", "2"])
        run(["split", str(data / "clips"), "--val", "0.25", "--seed", "0"])
    models = {}
    for size in sizes:
        model = data / f"model-{size}"
        if not (model / "best.pt").exists():
            run(["train", str(data / "clips"), "--out", str(model), "--epochs", str(epochs), "--seed", "0",
                 "--model-size", size])
        models[size] = model / "best.pt"
    return models


def score_all(weights: Path, test: Path) -> tuple[dict[str, list[float | None]], list[bool], float]:
    checkpoint = load_checkpoint(weights)
    model = model_from_checkpoint(checkpoint)
    backend = make_backend("dlib")
    rows = list(csv.DictReader((test / "labels.csv").open()))
    scores: dict[str, list[float | None]] = {}
    for name, options in modes(model.cfg.clip_len).items():
        scores[name] = [predict_video(test / row["path"], model, checkpoint, backend, options)["score"]
                        for row in rows]
    return scores, [row["label"] == "fake" for row in rows], checkpoint.threshold


def _moves(scores: list[float | None], against: list[float | None]) -> np.ndarray:
    pairs = [(a, b) for a, b in zip(scores, against) if a is not None and b is not None]
    return np.abs(np.array([a - b for a, b in pairs])) if pairs else np.zeros(0)


def summary(scores: dict[str, list[float | None]], fake: list[bool], threshold: float) -> dict[str, dict]:
    out = {}
    reference = scores["reference"]
    for name, values in scores.items():
        moved, moved_every = _moves(values, reference), _moves(values, scores["every frame"])
        known = [(v, f) for v, f in zip(values, fake) if v is not None]
        flips = sum((v is None) != (r is None) or (v is not None and (v >= threshold) != (r >= threshold))
                    for v, r in zip(values, reference))
        out[name] = {
            "max": float(moved.max(initial=0.0)), "mean": float(moved.mean()) if len(moved) else 0.0,
            "median": float(np.median(moved)) if len(moved) else 0.0,
            "max_vs_every_frame": float(moved_every.max(initial=0.0)),
            "mean_vs_every_frame": float(moved_every.mean()) if len(moved_every) else 0.0,
            "auc": roc_auc([float(f) for _, f in known], [v for v, _ in known]),
            "verdicts_changed": int(flips),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="bench_quality's folder (reused), or where to make one")
    parser.add_argument("--train-videos", type=int, default=40)
    parser.add_argument("--test-videos", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="ftcn-one-pass-"))
    models = prepare(work, args.train_videos, args.test_videos, args.epochs, args.sizes.split(","))
    figures = {}
    adopt = True
    for size, weights in models.items():
        scores, fake, threshold = score_all(weights, work / "test")
        figures[size] = {"scores": scores, "summary": summary(scores, fake, threshold), "threshold": threshold}
        print(f"\n{size} model (threshold {threshold:.3f}), {len(fake)} held-out videos:")
        print("| mode | max / mean / median \\|Δ score\\| vs reference | max / mean vs every frame | AUC | "
              "verdicts changed |")
        print("|---|---|---|---|---|")
        for name, row in figures[size]["summary"].items():
            print(f"| {name} | {row['max']:.3f} / {row['mean']:.3f} / {row['median']:.4f} | "
                  f"{row['max_vs_every_frame']:.3f} / {row['mean_vs_every_frame']:.3f} | "
                  f"{row['auc'] if row['auc'] is None else round(row['auc'], 3)} | {row['verdicts_changed']} |")
        adopt = adopt and figures[size]["summary"]["one pass"]["max"] <= ALLOWED_MOVE
    decision = ("one pass per frame moves no video score by more than "
                f"{ALLOWED_MOVE}: it can be the default" if adopt else
                f"one pass per frame moves video scores by more than {ALLOWED_MOVE}: the default stays")
    print(f"\n{decision} ({time.perf_counter() - started:.0f} s; everything in {work})")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "adopt_one_pass": adopt}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
