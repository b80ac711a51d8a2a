"""How well the 5 points that align each clip hold: against the official points, and on harder faces.

    .venv/bin/python bench/bench_alignment.py [--reference tests/fixtures/reference_pipeline] [--json F]

Two parts, because the official detector's weights cannot be had here and the reference cases carry detections,
not frames:

1. **The point rule, on the official detections** (``reference_pipeline``: RetinaFace's 5 points and the official
   landmark network's 68 on real footage). Our default backend aligns on 5 points taken from 68 landmarks (the
   official ``five_from_68`` rule, as for dlib), where the official pipeline aligns on RetinaFace's own 5. For
   every reference clip this fits the clip's one transform both ways and prints how far the faces' points land
   apart in the 224-px aligned face (mean and 95th percentile over points), and each point's mean offset.
2. **Harder faces** (the shipped talking face, QCIF): re-encoded at CRF 45, darkened to a mean of about 30, and
   rolled 30 degrees. Each frame's points (the default backend's, from dlib's 68 in MTCNN's box, and MTCNN's own
   O-Net points) are compared with the same source's points on the pristine frame, carried through the known roll:
   the error per frame as a share of the eyes' distance, the frames found, and how far each 32-frame clip's aligned
   face moves (the clip transform fitted on the hard frames against the one fitted on the pristine frames).

Figures are in docs/benchmarks.md ("Alignment").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftcn.faces.align import clip_affine, five_from_68  # noqa: E402
from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.clips import crop_boxes  # noqa: E402
from ftcn.faces.official import STD_POINTS_224  # noqa: E402
from ftcn.faces.mtcnn import MtcnnConfig, detect_faces  # noqa: E402
from ftcn.models.mtcnn import shared_mtcnn  # noqa: E402
from ftcn.synth.generate import media_dir  # noqa: E402
from ftcn.video.decode import iter_frames  # noqa: E402
from ftcn.video.encode import VideoWriter  # noqa: E402

POINTS = ("left eye", "right eye", "nose", "mouth left", "mouth right")
CLIP = 32


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def reference_rule(folder: Path) -> dict:
    """Part 1: clips aligned on five_from_68(official 68) against the official RetinaFace 5 points."""
    distances, offsets = [], []
    for case in sorted(p.parent for p in folder.glob("*/expected.json")):
        given = json.loads((case / "input.json").read_text())
        expected = json.loads((case / "expected.json").read_text())
        size = (given["frame_size"]["width"], given["frame_size"]["height"])
        for clip in expected["clips"]:
            track = expected["tracks"][clip["track"]]
            faces = [given["frames"][frame][track["detection_index"][frame - track["start"]]]
                     for frame in clip["frames"]]
            official5 = np.array([np.reshape(f["lm5"], (5, 2)) for f in faces])
            ours5 = np.array([five_from_68(np.reshape(f["lm68"], (68, 2))) for f in faces])
            boxes = crop_boxes(np.array([f["box"] for f in faces]), size)
            official, _ = clip_affine(official5, boxes)
            ours, _ = clip_affine(ours5, boxes)
            on_official = _apply(official, official5.reshape(-1, 2))
            distances.append(np.linalg.norm(_apply(ours, official5.reshape(-1, 2)) - on_official, axis=1))
            offsets.append((_apply(official, ours5.reshape(-1, 2)) - on_official).reshape(-1, 5, 2))
    moved = np.concatenate(distances)
    offset = np.concatenate(offsets).mean(axis=0)
    return {"clips": len(distances), "aligned_shift_px_mean": float(moved.mean()),
            "aligned_shift_px_p95": float(np.percentile(moved, 95)),
            "point_offset_px": {name: [round(float(v), 2) for v in offset[i]] for i, name in enumerate(POINTS)}}


def _hard_versions(folder: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """The talking face made hard three ways; each with the 2x3 map from pristine to its pixels."""
    frames = [frame.rgb for frame in iter_frames(media_dir() / "carphone_pristine.mp4")]
    height, width = frames[0].shape[:2]
    rng = np.random.default_rng(0)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 30.0, 1.0)
    makers = {
        "pristine": (lambda f: f, 18, identity),
        "crf45": (lambda f: f, 45, identity),
        "dark": (lambda f: np.clip(f * 0.25 + rng.normal(0, 2, f.shape), 0, 255).astype(np.uint8), 28, identity),
        "rolled30": (lambda f: cv2.warpAffine(f, turn, (width, height), borderMode=cv2.BORDER_REFLECT), 18, turn),
    }
    made = {}
    for name, (change, crf, affine) in makers.items():
        path = folder / f"{name}.mp4"
        with VideoWriter(path, width, height, 25, crf=crf) as writer:
            for frame in frames:
                writer.write(change(frame))
        made[name] = (path, affine)
    return made


def _points_per_frame(path: Path, source: str, backend, mtcnn) -> list[np.ndarray | None]:
    """Each frame's 5 points of its best face from one source (None where it found none)."""
    points: list[np.ndarray | None] = []
    for frame in iter_frames(path):
        if source == "backend":
            faces = backend.detect(frame.rgb)
            points.append(max(faces, key=lambda f: f.score).points5 if faces else None)
        else:
            found = detect_faces(mtcnn, frame.rgb, MtcnnConfig(min_face_px=20))
            points.append(found.points[int(np.argmax(found.scores))] if len(found.scores) else None)
    return points


def _clip_shift(reference: list[np.ndarray], hard: list[np.ndarray], affine: np.ndarray, size: tuple[int, int]
                ) -> float:
    """Mean distance, in aligned pixels, between where one clip's pristine points land with the clip transform
    fitted on the pristine frames and where they land (carried into the hard frames) with the hard frames' one."""
    carried = [_apply(affine, p) for p in reference]
    boxes = np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in reference])
    pristine, _ = clip_affine(np.array(reference), crop_boxes(boxes, size))
    hard_fit, _ = clip_affine(np.array(hard), crop_boxes(boxes, size))
    return float(np.mean([np.linalg.norm(_apply(hard_fit, c) - _apply(pristine, p), axis=1).mean()
                          for c, p in zip(carried, reference)]))


def hard_faces() -> dict:
    """Part 2: point error and clip shift on the hard versions of the talking face, per source of points."""
    backend, mtcnn = make_backend("mtcnn"), shared_mtcnn()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        versions = _hard_versions(Path(tmp))
        width, height = next(iter_frames(versions["pristine"][0])).rgb.shape[1::-1]
        pristine = {source: _points_per_frame(versions["pristine"][0], source, backend, mtcnn)
                    for source in ("backend", "onet")}
        for source, reference in pristine.items():
            for name, (path, affine) in versions.items():
                if name == "pristine":
                    continue
                hard = _points_per_frame(path, source, backend, mtcnn)
                pairs = [(r, h) for r, h in zip(reference, hard) if r is not None and h is not None]
                errors = [np.linalg.norm(h - _apply(affine, r), axis=1).mean() / np.linalg.norm(r[1] - r[0])
                          for r, h in pairs]
                shifts = [_clip_shift([r for r, _ in pairs[s:s + CLIP]], [h for _, h in pairs[s:s + CLIP]],
                                      affine, (width, height))
                          for s in range(0, len(pairs) - CLIP + 1, CLIP // 2)]
                figures[f"{source}/{name}"] = {
                    "frames_found": sum(h is not None for h in hard), "frames": len(hard),
                    "error_eyes_share_median": float(np.median(errors)) if errors else None,
                    "error_eyes_share_p95": float(np.percentile(errors, 95)) if errors else None,
                    "clip_shift_px_mean": float(np.mean(shifts)) if shifts else None,
                    "clip_shift_px_max": float(np.max(shifts)) if shifts else None,
                }
    both = [(a, b) for a, b in zip(pristine["backend"], pristine["onet"]) if a is not None and b is not None]
    offset = np.mean([(a - b) / np.linalg.norm(b[1] - b[0]) for a, b in both], axis=0)
    figures["backend_minus_onet_eyes_share"] = {name: [round(float(v), 3) for v in offset[i]]
                                                for i, name in enumerate(POINTS)}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path,
                        default=Path(__file__).resolve().parents[1] / "tests/fixtures/reference_pipeline")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rule = reference_rule(args.reference)
    print(f"1. five_from_68 against RetinaFace's 5 points, {rule['clips']} reference clips: the aligned face's points "
          f"move {rule['aligned_shift_px_mean']:.2f} px on average (95th percentile "
          f"{rule['aligned_shift_px_p95']:.2f} px) of 224")
    eyes = float(np.linalg.norm(STD_POINTS_224[1] - STD_POINTS_224[0]))
    for name, (dx, dy) in rule["point_offset_px"].items():
        print(f"   {name:12s} offset ({dx:+.2f}, {dy:+.2f}) px = ({dx / eyes:+.3f}, {dy / eyes:+.3f}) of the eyes' distance")
    hard = hard_faces()
    print("\n2. Harder faces (talking face, QCIF), each source against itself on the pristine frames")
    print(f"   {'source/version':18s} {'found':>8s} {'error/eyes med':>14s} {'p95':>6s} {'clip shift px':>13s} {'max':>6s}")
    for name, row in hard.items():
        if name.startswith("backend_minus"):
            continue
        fmt = (lambda v: f"{v:.3f}" if v is not None else "-")
        print(f"   {name:18s} {row['frames_found']:4d}/{row['frames']:3d} {fmt(row['error_eyes_share_median']):>14s} "
              f"{fmt(row['error_eyes_share_p95']):>6s} {fmt(row['clip_shift_px_mean']):>13s} "
              f"{fmt(row['clip_shift_px_max']):>6s}")
    print("   backend (5 from dlib's 68) minus O-Net's 5 points, pristine, share of the eyes' distance:")
    for name, (dx, dy) in hard["backend_minus_onet_eyes_share"].items():
        print(f"   {name:12s} ({dx:+.3f}, {dy:+.3f})")
    if args.json:
        args.json.write_text(json.dumps({"reference_rule": rule, "hard_faces": hard}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
