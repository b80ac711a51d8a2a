"""bf16 and int8 judged as users see them: per model, each precision against fp32 on held-out videos.

For every trained model of one or more ``bench/bench_quality.py --out`` folders (``train-*/model-*/best.pt``,
beside the clips it was trained on), the same held-out clips go through the same network three ways, only the
arithmetic changed: fp32 (OpenVINO), bf16 (OpenVINO's bf16 on a CPU with native bf16) and int8 (NNCF's
post-training quantization, calibrated on the model's own training clips, never on the held-out videos). Per model
and precision it prints the video-level AUC and fp32's, the share of verdicts equal to fp32's at the model's
threshold, the largest change of a video score, the seconds per clip and the preparation time (int8: quantizing),
and the decision by the product's rule (``ftcn.precision_check``: AUC at least fp32's minus 0.005 and at least
99 % of verdicts equal). Example (the held-out set is preprocessed once per clip shape, into HELD-clips-*):

    .venv/bin/python bench/bench_quality.py --out /tmp/bq/a                    # 6 models, about 15 minutes
    .venv/bin/python bench/bench_quality.py --out /tmp/bq/b --train-seed 7     # 6 more
    .venv/bin/python -m ftcn synth /tmp/held120 --videos 120 --seed 55 --methods jitter,flicker,mask,stutter,faceswap
    .venv/bin/python bench/bench_precision.py /tmp/bq/a /tmp/bq/b --held-out /tmp/held120
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftcn.checkpoints import load_model  # noqa: E402
from ftcn.cli import main as ftcn  # noqa: E402
from ftcn.datasets.split import load_split_rows, read_manifest  # noqa: E402
from ftcn.datasets.storage import open_store  # noqa: E402
from ftcn.precision_check import check_precisions, table_lines  # noqa: E402
from ftcn.training.data import ClipRef, clip_refs  # noqa: E402


def held_out_clips(held: Path, clip_len: int, size: int) -> Path:
    """The held-out videos preprocessed for this clip shape (once; a rerun reuses them)."""
    out = held.with_name(f"{held.name}-clips-{clip_len}x{size}")
    if not (out / "manifest.csv").exists():
        code = ftcn(["preprocess", str(held), str(out), "--clip-len", str(clip_len), "--size", str(size),
                     "--workers", "2"])
        if code != 0:
            raise SystemExit(f"preprocessing the held-out set for {clip_len}x{size} failed ({code})")
    return out


def every_clip(store) -> list[ClipRef]:
    return [ClipRef(row["video_id"], 1.0 if row["label"] == "fake" else 0.0, row["path"], int(row["index"]))
            for row in read_manifest(store) if row["status"] == "ok"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="bench_quality.py --out folders")
    parser.add_argument("--held-out", type=Path, required=True, help="an ftcn synth folder with labels.csv")
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args(argv)
    checkpoints = sorted(p for folder in args.folders for p in folder.glob("train-*/model-*/best.pt"))
    if not checkpoints:
        raise SystemExit("no train-*/model-*/best.pt under the folders given (run bench_quality.py --out first)")
    table = []
    for checkpoint_path in checkpoints:
        model, checkpoint = load_model(checkpoint_path)
        held = open_store(held_out_clips(args.held_out, model.cfg.clip_len, model.cfg.image_size))
        trained = open_store(checkpoint_path.parents[1] / "clips")
        rows = check_precisions(model, checkpoint.threshold, held, every_clip(held),
                                clip_refs(load_split_rows(trained), "train"), calibration_store=trained)
        name = str(checkpoint_path.relative_to(checkpoint_path.parents[3]))
        print(f"\n{name} (threshold {checkpoint.threshold:.3f})")
        print("\n".join(table_lines(rows)), flush=True)
        table.append({"model": name, "rows": [row.__dict__ for row in rows]})
    print("\n| model | precision | videos | AUC | fp32 AUC | same verdicts | largest change | s/clip | prepare s | "
          "decision |\n|---|---|---|---|---|---|---|---|---|---|")
    for entry in table:
        for row in entry["rows"]:
            auc = "n/a" if row["auc"] is None else f"{row['auc']:.4f}"
            auc32 = "n/a" if row["auc_fp32"] is None else f"{row['auc_fp32']:.4f}"
            decision = "passes" if row["passed"] else f"refused: {row['why']}"
            print(f"| {entry['model']} | {row['precision']} | {row['videos']} | {auc} | {auc32} | "
                  f"{row['agreement']:.1%} | {row['largest_change']:.4f} | {row['seconds_per_clip']:.4f} | "
                  f"{row['prepare_s']:.1f} | {decision} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
