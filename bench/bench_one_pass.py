"""The speed guard on trained models: which ways of choosing clips keep the verdicts and the ranking of the reference.

Issue 27's rule: a mode is acceptable when, for every model, its video-level AUC over the held-out videos is at
least the reference mode's minus 0.01 and its verdict (score at the model's threshold; no score is a verdict of
its own) equals the reference mode's on at least 98 % of the videos. Random weights say nothing here, so the
models are the trained tiny and small models of ``bench/bench_quality.py --out`` folders (three training sets and
two sizes each: two folders made with different seeds give 12 models), each scored on its folder's held-out set
of every method.

Modes, each through ``predict_video``:

- reference: the official way (a clip at every frame, detection on every frame, the official tracker);
- every frame: our tracker and face finding, a clip at every frame (what the tracker alone moves);
- half clip: clips every half clip on every track (the default before the adaptive pass);
- one pass: clips every clip length (each frame in one clip);
- default: ``PredictOptions()``, the adaptive pass (one pass, then the half-clip clips of borderline tracks).

Printed per model and mode: the AUC and its change against the reference, verdicts equal to the reference's,
the largest |score move|, the clips scored, and whether the guard holds; then, per mode, whether it holds on
every model, against the reference and against "every frame" (which differs from the reference only by our
tracker and face finding, so that comparison isolates how clips are chosen).

    .venv/bin/python bench/bench_quality.py --out /tmp/bq1
    .venv/bin/python bench/bench_quality.py --out /tmp/bq2 --train-seed 7 --fit-seed 1
    .venv/bin/python bench/bench_one_pass.py /tmp/bq1 /tmp/bq2 --jobs 2 --json /tmp/guard.json  # ~40 min, 2 cores
    .venv/bin/python bench/bench_one_pass.py --scores /tmp/guard.json   # the tables again, from those scores
    .venv/bin/python -m ftcn synth /tmp/held120 --videos 120 --seed 55 --methods jitter,flicker,mask,stutter,faceswap
    .venv/bin/python bench/bench_one_pass.py /tmp/bq1 /tmp/bq2 --jobs 2 --test /tmp/held120   # a larger held-out set

The AUC of 30 videos moves by a few pairs between any two ways of scoring them, so each AUC change is printed with
its 95 % interval when the held-out videos are resampled (a paired bootstrap), and the mean change over the models.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_predict import reference_options  # noqa: E402
from children import in_child  # noqa: E402

from ftcn.checkpoints import load_checkpoint, model_from_checkpoint  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.names import DEFAULT_BACKEND  # noqa: E402
from ftcn.predict.pipeline import PredictOptions, predict_video  # noqa: E402
from ftcn.training.metrics import roc_auc  # noqa: E402

#: The guard: AUC at most this much below the reference's, verdicts equal on at least this share of the videos.
AUC_DROP = 0.01
AGREEMENT = 0.98
MODES = ("reference", "every frame", "half clip", "one pass", "default")


def options_for(mode: str, clip_len: int) -> PredictOptions:
    return {
        "reference": reference_options(),
        "every frame": PredictOptions(stride=1),
        "half clip": PredictOptions(stride=max(1, clip_len // 2)),
        "one pass": PredictOptions(stride=clip_len),
        "default": PredictOptions(),
    }[mode]


def score_model(weights: Path, test: Path, modes: list[str], threads: int = 2) -> dict:
    """Every held-out video's score, clip count and looked-again tracks, per mode."""
    torch.set_num_threads(threads)
    checkpoint = load_checkpoint(weights)
    model = model_from_checkpoint(checkpoint)
    backend = make_backend(DEFAULT_BACKEND)
    rows = list(csv.DictReader((test / "labels.csv").open()))
    scored: dict[str, dict] = {}
    for mode in modes:
        options = options_for(mode, model.cfg.clip_len)
        clock = time.perf_counter()
        results = [predict_video(test / row["path"], model, checkpoint, backend, options) for row in rows]
        scored[mode] = {
            "scores": [r["score"] for r in results],
            "clips": sum(t["clips"] for r in results for t in r["tracks"]),
            "looked_again": sum(bool(t.get("looked_again")) for r in results for t in r["tracks"]),
            "seconds": time.perf_counter() - clock,
        }
    return {"videos": [row["path"] for row in rows], "fake": [row["label"] == "fake" for row in rows],
            "threshold": checkpoint.threshold, "modes": scored}


def _verdict(score: float | None, threshold: float) -> str:
    return "NO_FACE" if score is None else "FAKE" if score >= threshold else "REAL"


def judge(model: dict, against: str = "reference") -> dict[str, dict]:
    """Per mode: AUC, its change against the ``against`` mode's, verdict agreement with it, the largest score move,
    and whether the guard holds."""
    fake, threshold = model["fake"], model["threshold"]
    reference = model["modes"][against]["scores"]

    def auc(scores: list[float | None]) -> float | None:
        known = [(s, f) for s, f in zip(scores, fake) if s is not None]
        return roc_auc([float(f) for _, f in known], [s for s, _ in known])

    reference_auc = auc(reference)
    out = {}
    for mode, figures in model["modes"].items():
        scores = figures["scores"]
        mode_auc = auc(scores)
        same = sum(_verdict(s, threshold) == _verdict(r, threshold) for s, r in zip(scores, reference))
        moves = [abs(s - r) for s, r in zip(scores, reference) if s is not None and r is not None]
        agreement = same / len(scores)
        holds = (mode_auc is not None and reference_auc is not None and mode_auc >= reference_auc - AUC_DROP
                 and agreement >= AGREEMENT)
        out[mode] = {"auc": mode_auc, "auc_change": None if mode_auc is None or reference_auc is None
                     else mode_auc - reference_auc, "agreement": agreement, "verdicts_changed": len(scores) - same,
                     "max_move": max(moves, default=0.0), "clips": figures["clips"],
                     "looked_again": figures["looked_again"], "seconds": figures["seconds"], "holds": holds}
    return out


def auc_interval(model: dict, mode: str, against: str, draws: int = 1000) -> tuple[float, float]:
    """95 % interval of the AUC change of ``mode`` against ``against`` when the held-out videos are resampled
    (paired bootstrap): how much of a change the number of videos leaves to chance."""
    rng = np.random.default_rng(0)
    fake = np.asarray(model["fake"])
    mine = model["modes"][mode]["scores"]
    theirs = model["modes"][against]["scores"]
    known = [i for i in range(len(fake)) if mine[i] is not None and theirs[i] is not None]
    changes = []
    for _ in range(draws):
        pick = rng.choice(known, size=len(known))
        labels = [float(fake[i]) for i in pick]
        if 0 < sum(labels) < len(labels):
            changes.append(roc_auc(labels, [mine[i] for i in pick]) - roc_auc(labels, [theirs[i] for i in pick]))
    return (float(np.percentile(changes, 2.5)), float(np.percentile(changes, 97.5))) if changes else (0.0, 0.0)


def report(figures: dict[str, dict], modes: list[str]) -> dict[str, list[str]]:
    """The tables: per model and mode against the reference, then per mode against the reference and against
    "every frame" (our tracker with every clip: what the choice of clips alone moves); returns the modes acceptable
    on every model, against each."""
    print(f"guard: AUC >= reference - {AUC_DROP}, verdicts equal to the reference's on >= {AGREEMENT:.0%} of the "
          f"videos; {len(figures)} models")
    print("| model | mode | AUC (change; 95 % interval by resampling the videos) | verdicts equal | "
          "max \\|Δ score\\| | clips | looked again | guard |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model in figures.items():
        model["judged"] = judge(model)
        if "every frame" in modes:
            model["judged_vs_every_frame"] = judge(model, "every frame")
        for mode, row in model["judged"].items():
            low, high = auc_interval(model, mode, "reference")
            auc = "n/a" if row["auc"] is None else f"{row['auc']:.3f} ({row['auc_change']:+.3f}; {low:+.3f}..{high:+.3f})"
            print(f"| {name} | {mode} | {auc} | {row['agreement']:.1%} ({row['verdicts_changed']} changed) | "
                  f"{row['max_move']:.3f} | {row['clips']} | {row['looked_again']} | "
                  f"{'holds' if row['holds'] else 'FAILS'} |")
    acceptable = {}
    for against, key in (("reference", "judged"), ("every frame", "judged_vs_every_frame")):
        if against not in modes:
            continue
        print(f"\nagainst {against}:\n| mode | models where the guard holds | verdicts equal on every video | "
              "AUC within 0.01 | mean AUC change | worst AUC change | fewest verdicts equal | clips, all models |")
        print("|---|---|---|---|---|---|---|---|")
        holds = {}
        for mode in modes:
            rows = [model[key][mode] for model in figures.values()]
            held = sum(row["holds"] for row in rows)
            holds[mode] = held == len(rows)
            changes = [row["auc_change"] for row in rows if row["auc_change"] is not None]
            within = sum(change >= -AUC_DROP for change in changes)
            print(f"| {mode} | {held} of {len(rows)} | {sum(row['verdicts_changed'] == 0 for row in rows)} of "
                  f"{len(rows)} | {within} of {len(rows)} | {np.mean(changes) if changes else 0.0:+.4f} | "
                  f"{min(changes, default=0.0):+.3f} | {min(row['agreement'] for row in rows):.1%} | "
                  f"{sum(row['clips'] for row in rows)} |")
        acceptable[against] = [mode for mode in modes if mode != against and holds[mode]]
        print(f"acceptable on every model against {against}: {', '.join(acceptable[against]) or 'none'}")
    return acceptable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="bench_quality.py --out folders (models and test/)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", type=Path, help="also write every score and figure here")
    parser.add_argument("--scores", type=Path, help="print the tables again from the --json of an earlier run")
    parser.add_argument("--test", type=Path, help="score every model on this held-out set (an ftcn synth folder "
                        "with labels.csv) instead of its folder's test/: a larger one bounds the AUC change tighter")
    parser.add_argument("--jobs", type=int, default=1, help="models scored at once, each in its own process "
                        "(2 on 2 cores: one thread each)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    modes = args.modes.split(",")
    if "reference" not in modes:
        raise SystemExit("the guard is measured against the reference mode: keep it in --modes")
    if args.scores:
        figures = json.loads(args.scores.read_text())["models"]
        modes = [mode for mode in modes if all(mode in model["modes"] for model in figures.values())]
    else:
        figures = score_all(args.folders, modes, args.jobs, args.test)
    acceptable = report(figures, modes)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"models": figures, "acceptable": acceptable}, indent=2))
    return 0


def score_all(folders: list[Path], modes: list[str], jobs: int, test: Path | None = None) -> dict[str, dict]:
    """Every model of the folders scored on ``test`` or its folder's held-out set, ``jobs`` models at a time."""
    checkpoints = sorted(p for folder in folders for p in folder.glob("train-*/model-*/best.pt"))
    if not checkpoints:
        raise SystemExit("no train-*/model-*/best.pt under the folders given (run bench_quality.py --out first)")
    figures: dict[str, dict] = {}
    threads = max(1, 2 // jobs)
    with ThreadPoolExecutor(jobs) as pool:  # each model in a new interpreter (bench/children.py)
        scored = pool.map(lambda weights: in_child(score_model, weights, test or weights.parents[2] / "test", modes,
                                                   threads), checkpoints)
        for weights, model in zip(checkpoints, scored):
            name = "/".join(weights.parts[-4:-1])  # <folder>/train-*/model-*
            if "error" in model:
                raise SystemExit(f"scoring {name} failed: {model['error']}")
            figures[name] = model
            print(f"scored {name}", flush=True)
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
