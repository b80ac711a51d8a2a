"""Faces in footage nobody here made: the product path on a manifest of real videos, per video and per dataset.

    .venv/bin/python bench/bench_realworld.py MANIFEST.csv [--weights ftcn_tt.pth] [--backend mtcnn] [--json F]

``MANIFEST.csv`` has a header row and the columns ``path,label[,dataset]`` (label real/fake or empty; paths relative
to the manifest). Each video goes through ``predict_video`` with the default options (the backend asked for), and
this prints per video: the verdict (NO_FACE or not), the share of its frames that a judged face covers, the faces
judged, the seconds it took and its resolution; then per dataset: videos, NO_FACE count, the median coverage and,
where labels are given, the video AUC.

The AUC means something only with trained weights (``--weights``: ftcn_tt.pth or a checkpoint of ours); without
them an untrained tiny model stands in, and only the face figures (NO_FACE, coverage, faces judged), which do not
depend on the model, are printed. The media are not in the repository (they have no licence to share): the
"Real footage" section of docs/benchmarks.md says how the development corpus's manifest is rebuilt from the public repositories
that committed the videos.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftcn.checkpoints import Checkpoint, load_model, model_from_checkpoint  # noqa: E402
from ftcn.errors import FtcnError  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.names import BACKENDS, DEFAULT_BACKEND  # noqa: E402
from ftcn.models import build_model, config_for_size  # noqa: E402
from ftcn.predict.pipeline import predict_video  # noqa: E402
from ftcn.training.ranking import roc_auc  # noqa: E402


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle)]
    if not rows or "path" not in rows[0]:
        raise SystemExit(f"{path.name}: a header row with path,label[,dataset] is needed")
    for row in rows:
        video = Path(row["path"])
        row["path"] = str(video if video.is_absolute() else path.parent / video)
        row["label"] = (row.get("label") or "").strip().lower()
        row["dataset"] = (row.get("dataset") or "").strip() or "-"
    return rows


def measure(rows: list[dict[str, str]], model, checkpoint: Checkpoint, backend) -> list[dict]:
    results = []
    for row in rows:
        started = time.perf_counter()
        try:
            result = predict_video(row["path"], model, checkpoint, backend)
        except (FtcnError, OSError) as exc:
            results.append({**row, "error": str(exc)})
            print(f"{Path(row['path']).name[:40]:40s} ERROR {exc}", flush=True)
            continue
        judged = sum(track["score"] is not None for track in result["tracks"])
        entry = {**row, "verdict": result["verdict"], "score": result["score"],
                 "coverage": result["coverage"]["share"], "faces_judged": judged,
                 "seconds": round(time.perf_counter() - started, 1),
                 "resolution": f"{result['input']['width']}x{result['input']['height']}",
                 "reason": result.get("no_face_reason") or "; ".join(result.get("inconclusive_reasons") or [])}
        results.append(entry)
        print(f"{Path(row['path']).name[:40]:40s} {entry['verdict']:12s} covered {entry['coverage']:6.1%}  "
              f"faces {judged}  {entry['seconds']:6.1f} s  {entry['resolution']:>9s}  {row['dataset']}", flush=True)
    return results


def summary(results: list[dict], with_auc: bool) -> dict[str, dict]:
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for entry in results:
        by_dataset[entry["dataset"]].append(entry)
        by_dataset["all"].append(entry)
    figures = {}
    for name, entries in by_dataset.items():
        scored = [e for e in entries if e.get("score") is not None and e["label"] in ("real", "fake")]
        figures[name] = {
            "videos": len(entries),
            "errors": sum("error" in e for e in entries),
            "no_face": sum(e.get("verdict") == "NO_FACE" for e in entries),
            "median_coverage": round(statistics.median([e.get("coverage", 0.0) for e in entries]), 4),
            "auc": roc_auc([1.0 if e["label"] == "fake" else 0.0 for e in scored], [e["score"] for e in scored])
            if with_auc and scored else None,
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--weights", type=Path, help="trained weights (ftcn_tt.pth or ours): needed for the AUC")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if args.weights:
        model, checkpoint = load_model(args.weights)
    else:  # the face figures do not depend on the model; its scores are never shown
        network = build_model(config_for_size("tiny"))
        checkpoint = Checkpoint(network.cfg, network.state_dict(), metadata={"purpose": "bench, untrained"})
        model = model_from_checkpoint(checkpoint)
    results = measure(read_manifest(args.manifest), model, checkpoint, make_backend(args.backend))
    figures = summary(results, with_auc=args.weights is not None)
    print(f"\n{'dataset':16s} {'videos':>6s} {'NO_FACE':>7s} {'errors':>6s} {'median covered':>14s} {'AUC':>6s}")
    for name, row in figures.items():
        auc = f"{row['auc']:.3f}" if row["auc"] is not None else "-"
        print(f"{name:16s} {row['videos']:6d} {row['no_face']:7d} {row['errors']:6d} {row['median_coverage']:14.1%} "
              f"{auc:>6s}")
    if not args.weights:
        print("(no --weights: AUC not computed; the verdicts above come from an untrained model and mean nothing)")
    if args.json:
        args.json.write_text(json.dumps({"backend": args.backend, "summary": figures, "videos": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
