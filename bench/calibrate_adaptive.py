"""Where the adaptive pass's margin (``ftcn.predict.adaptive.NEAR_LOGIT``) comes from.

On a calibration set apart from bench_one_pass's held-out set, every model of ``bench_quality.py --out`` folders
scores each video twice: one pass (clips a clip length apart) and the half-clip stride, keeping each track's clip
probabilities. The adaptive pass with a margin of m log-odds is then replayed from those numbers (a track it would
look at again takes its half-clip score, the others their one-pass score): per margin, the share of tracks looked
at again, the fewest verdicts equal to the half-clip stride's over the models, and the mean and worst AUC change
against it. The margin is the smallest that keeps every verdict.

    .venv/bin/python -m ftcn synth /tmp/calib --videos 40 --seed 98 --methods faceswap,flicker,jitter,mask,stutter
    .venv/bin/python bench/calibrate_adaptive.py /tmp/calib /tmp/bq1 /tmp/bq2      # about 12 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ftcn.checkpoints import load_checkpoint, model_from_checkpoint  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.names import DEFAULT_BACKEND  # noqa: E402
from ftcn.predict.adaptive import looks_borderline  # noqa: E402
from ftcn.predict.options import PredictOptions  # noqa: E402
from ftcn.predict.passes import streamed  # noqa: E402
from ftcn.runtime import engine_for  # noqa: E402
from ftcn.timing import StageTimer  # noqa: E402
from ftcn.training.metrics import roc_auc  # noqa: E402

MARGINS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def clip_scores(path: Path, model, backend, stride: int) -> list[list[float]]:
    """Each judged track's clip probabilities at a fixed stride."""
    options = PredictOptions(stride=stride, adaptive=False).resolved(model, backend)
    engine = engine_for(model, options.runtime, options.precision)
    found = streamed(path, model, backend, engine, options, lambda *_: None, StageTimer())
    judged = sum(reason is None for reason in found.unjudged)
    return [[float(p) for p, w in zip(found.probabilities, found.windows) if w.track == j] for j in range(judged)]


def replay(videos: list[dict], threshold: float, band, margin: float | None) -> tuple[list[float | None], int, int]:
    """Video scores of the adaptive pass with ``margin`` (None: one pass everywhere, inf: half clip everywhere),
    and (tracks looked at again, tracks)."""
    import ftcn.predict.adaptive as adaptive

    scores, again, tracks = [], 0, 0
    saved = adaptive.NEAR_LOGIT
    try:
        adaptive.NEAR_LOGIT = margin if margin is not None else -1.0
        for video in videos:
            per_track = []
            for one, half in zip(video["one"], video["half"]):
                look = margin == float("inf") or (margin is not None and looks_borderline(np.array(one), threshold,
                                                                                          band))
                again += look
                tracks += 1
                per_track.append(float(np.mean(half if look else one)))
            scores.append(max(per_track) if per_track else None)
    finally:
        adaptive.NEAR_LOGIT = saved
    return scores, again, tracks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calibration", type=Path, help="a folder of ftcn synth (labels.csv)")
    parser.add_argument("folders", nargs="+", type=Path, help="bench_quality.py --out folders")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rows = list(csv.DictReader((args.calibration / "labels.csv").open()))
    fake = [row["label"] == "fake" for row in rows]
    backend = make_backend(DEFAULT_BACKEND)
    models = []
    for weights in sorted(p for folder in args.folders for p in folder.glob("train-*/model-*/best.pt")):
        checkpoint = load_checkpoint(weights)
        model = model_from_checkpoint(checkpoint)
        videos = [{"one": clip_scores(args.calibration / row["path"], model, backend, model.cfg.clip_len),
                   "half": clip_scores(args.calibration / row["path"], model, backend, model.cfg.clip_len // 2)}
                  for row in rows]
        models.append((checkpoint.threshold, checkpoint.band, videos))
        print(f"scored {'/'.join(weights.parts[-4:-1])}", flush=True)

    def verdicts(scores: list[float | None], threshold: float) -> list[str]:
        return ["NO_FACE" if s is None else "FAKE" if s >= threshold else "REAL" for s in scores]

    def auc(scores: list[float | None]) -> float:
        known = [(s, f) for s, f in zip(scores, fake) if s is not None]
        return roc_auc([float(f) for _, f in known], [s for s, _ in known])

    print(f"\n{len(models)} models, {len(rows)} calibration videos; against the half-clip stride:")
    print("| margin (log-odds) | tracks looked at again | fewest verdicts equal | mean AUC change | worst AUC change |")
    print("|---|---|---|---|---|")
    for margin in (None, *MARGINS):
        equal, changes, again, tracks = [], [], 0, 0
        for threshold, band, videos in models:
            half, _, _ = replay(videos, threshold, band, float("inf"))
            mine, looked, count = replay(videos, threshold, band, margin)
            again, tracks = again + looked, tracks + count
            equal.append(np.mean([a == b for a, b in zip(verdicts(mine, threshold), verdicts(half, threshold))]))
            changes.append(auc(mine) - auc(half))
        label = "one pass (none)" if margin is None else f"{margin:g}"
        print(f"| {label} | {again / max(1, tracks):.0%} | {min(equal):.1%} | {np.mean(changes):+.4f} | "
              f"{min(changes):+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
