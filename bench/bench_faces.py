"""Face finding, measured: recall and false faces per frame after tracking, and the faces stage's speed.

Scenes come from ``ftcn.synth.scenes``: the shipped photo's face pasted at a known box (heights 24-240 px, in-plane
roll 0-45 degrees) on a face-free background the camera pans over, H.264 at CRF 18-45, blur and dim light, plus
face-free scenes. Each scene goes through the product path: ``scan_faces`` (the backend's detection and
landmarks) and ``link_faces`` (tracking). A face counts as found in a frame when a track's box there overlaps its
true box with IoU >= 0.3; a track box that overlaps no true face (IoU < 0.1) is a false face, one in between an
imprecise box of a real face (reported apart).

Speed: the faces stage (decode, detection, landmarks, tracking) in ms per video frame at 360p, 720p and 1080p, and
the second look before NO_FACE on a 10-s face-free 720p video.

Newcomers: on a 10-s 720p scene whose face is followed from the first frame, a second face enters just after a
full keyframe (the worst moment for it); the seconds until a track holds it, per height. The face schedule
promises within the coarse keyframe's interval (1 s) for faces the coarse scan sees, within the full one's (4 s)
for smaller ones.

    python bench/bench_faces.py                # the full grid with the default (dlib) backend
    python bench/bench_faces.py --quick        # a smaller grid
    python bench/bench_faces.py --backend retinaface --retinaface-weights R.pth --landmark-weights L.pth.tar
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


from ftcn.faces.backends import make_backend  # noqa: E402
from ftcn.faces.names import BACKENDS  # noqa: E402
from ftcn.faces.tracking import boxes_at, iou, link_faces  # noqa: E402
from ftcn.faces.scan import FULL_KEYFRAME_S, scan_faces  # noqa: E402
from ftcn.synth.scenes import OtherFace, SceneSpec, render_scene, write_scene  # noqa: E402

FOUND_IOU = 0.3
#: A track box overlapping every true face less than this is a false face (between the two: a real face boxed
#: imprecisely, e.g. a face below the scan's floor found with the detector's smallest box, counted as neither).
FALSE_IOU = 0.1
HEIGHTS = (24, 32, 40, 60, 90, 140, 240)
ROLLS = (0, 15, 25, 35, 45)
CRFS = (18, 28, 35, 45)
PARTS = ("grid", "speed", "long", "newcomers", "second-look")
CONDITIONS = {"clean": {}, "blur": {"blur_sigma": 1.5}, "dim": {"light": 0.35}}


def measure(backend, spec: SceneSpec, folder: Path) -> dict:
    """Frames with a true face, those found, and false track boxes, for one scene."""
    scene = render_scene(spec)
    path = write_scene(folder / "scene.mp4", scene)
    scan = scan_faces(path, backend)
    tracks = link_faces(scan.faces, backend.tracker_config)
    truth, found, false, imprecise = 0, 0, 0, 0
    for t, boxes in enumerate(scene.boxes):
        held = boxes_at(tracks, t)
        truth += len(boxes)
        found += sum(any(iou(box, true) >= FOUND_IOU for box in held) for true in boxes)
        false += sum(all(iou(box, true) < FALSE_IOU for true in boxes) for box in held)
        imprecise += sum(any(FALSE_IOU <= iou(box, true) < FOUND_IOU for true in boxes)
                         and not any(iou(box, true) >= FOUND_IOU for true in boxes) for box in held)
    return {"frames": len(scene.frames), "truth": truth, "found": found, "false": false, "imprecise": imprecise}


def grid(quick: bool) -> list[tuple[str, SceneSpec]]:
    heights, rolls, crfs = (HEIGHTS[::2], ROLLS[::2], CRFS[1:3]) if quick else (HEIGHTS, ROLLS, CRFS)
    specs = [(f"h{h}-r{r}-crf{c}", SceneSpec(face_px=h, roll_deg=r, crf=c, seed=i))
             for i, (h, r, c) in enumerate(itertools.product(heights, rolls, crfs))]
    for name, change in CONDITIONS.items():
        if name != "clean":
            specs += [(f"h{h}-{name}", SceneSpec(face_px=h, crf=28, seed=100 + h, **change)) for h in (40, 90)]
    specs += [(f"noface-{s}", SceneSpec(face_px=0, crf=28, frames=48, seed=200 + s)) for s in range(2 if quick else 6)]
    return specs


def speed(backend, folder: Path, seconds: float) -> dict[str, float]:
    """ms per frame of the faces stage on a talking-head-sized face at each resolution."""
    figures = {}
    for label, size in (("360p", (640, 360)), ("720p", (1280, 720)), ("1080p", (1920, 1080))):
        frames = int(seconds * 25)
        spec = SceneSpec(face_px=size[1] // 3, crf=23, frames=frames, size=size, seed=7)
        path = write_scene(folder / f"speed-{label}.mp4", render_scene(spec))
        started = time.perf_counter()
        scan = scan_faces(path, backend)
        link_faces(scan.faces, backend.tracker_config)
        figures[label] = round(1000 * (time.perf_counter() - started) / frames, 1)
    return figures


def long_talking_head(backend, folder: Path, seconds: float) -> dict:
    """The shipped talking face looped and scaled into 720p (as bench_predict makes it): how much of it one track
    holds, and the faces stage's cost per frame."""
    from bench_predict import make_long_video

    path = make_long_video(folder / "long.mp4", seconds)
    started = time.perf_counter()
    scan = scan_faces(path, backend)
    tracks = link_faces(scan.faces, backend.tracker_config)
    elapsed = time.perf_counter() - started
    longest = max((len(track) for track in tracks), default=0)
    return {"frames": scan.frames_read, "tracks": len(tracks), "longest_track_share": round(longest / scan.frames_read, 4),
            "ms_per_frame": round(1000 * elapsed / scan.frames_read, 1), "detect_every": scan.detect_every}


def newcomer_latency(backend, folder: Path, heights: tuple[int, ...] = (40, 60, 120), seconds: float = 10.0) -> dict:
    """Per newcomer height: seconds from its entry (the frame after a full keyframe) to the first frame a track
    box holds it (IoU >= FOUND_IOU), None if never, and the tracks made; the followed face is 240 px."""
    figures = {}
    fps = 25.0
    enters = round(FULL_KEYFRAME_S * fps) + 1
    for height in heights:
        spec = SceneSpec(face_px=240, crf=23, frames=int(seconds * fps), size=(1280, 720), fps=fps, seed=17,
                         centre=(0.3, 0.5), others=(OtherFace(height, (0.75, 0.45), (enters, int(seconds * fps))),))
        scene = render_scene(spec)
        path = write_scene(folder / f"newcomer-{height}.mp4", scene)
        scan = scan_faces(path, backend)
        tracks = link_faces(scan.faces, backend.tracker_config)
        found = next((t for t in range(enters, len(scene.boxes)) if any(
            iou(box, scene.boxes[t][-1]) >= FOUND_IOU for box in boxes_at(tracks, t))), None)
        figures[f"{height}px"] = {"seconds_to_found": None if found is None else round((found - enters) / fps, 2),
                                  "tracks": len(tracks)}
    return figures


def second_look_cost(backend, folder: Path, seconds: float = 10.0) -> dict | None:
    """What the second look before NO_FACE costs on a face-free 720p video (the issue's bound: 10 s)."""
    from ftcn.predict.second_look import second_look

    spec = SceneSpec(face_px=0, crf=28, frames=int(seconds * 25), size=(1280, 720), seed=11)
    path = write_scene(folder / "noface-720p.mp4", render_scene(spec))
    looked = second_look(path, backend, spec.frames)
    return None if looked is None else looked.describe()


def grid_figures(rows: dict[str, dict]) -> dict:
    """Recall (the target's and by height, roll, CRF and condition) and false faces per frame of the grid."""
    def recall(select) -> tuple[float, int]:
        chosen = [r for r in rows.values() if select(r["spec"]) and r["truth"]]
        truth = sum(r["truth"] for r in chosen)
        return (sum(r["found"] for r in chosen) / truth if truth else float("nan")), truth

    target, truth = recall(lambda s: s["face_px"] >= 40 and s["roll_deg"] <= 25 and s["crf"] <= 35)
    by_height = defaultdict(list)
    for r in rows.values():
        if r["truth"]:
            by_height[r["spec"]["face_px"]].append(r)
    frames = sum(r["frames"] for r in rows.values())
    return {
        "recall_target": round(target, 4), "recall_target_frames": truth,
        "recall_by_height": {h: round(sum(r["found"] for r in rs) / sum(r["truth"] for r in rs), 3)
                             for h, rs in sorted(by_height.items())},
        "recall_by_roll": {roll: round(recall(lambda s, roll=roll: s["roll_deg"] == roll and s["face_px"] >= 40)[0], 3)
                           for roll in ROLLS},
        "recall_by_crf": {crf: round(recall(lambda s, crf=crf: s["crf"] == crf and s["face_px"] >= 40)[0], 3)
                          for crf in CRFS},
        "recall_by_condition": {name: round(recall(lambda s, change=change: all(
            s[k] == v for k, v in change.items()) and s["face_px"] >= 40 and (change or s["blur_sigma"] == 0
                                                                             and s["light"] == 1.0))[0], 3)
            for name, change in CONDITIONS.items()},
        "false_faces_per_frame": round(sum(r["false"] for r in rows.values()) / max(1, frames), 4),
        "imprecise_boxes_per_frame": round(sum(r["imprecise"] for r in rows.values()) / max(1, frames), 4),
        "false_faces_per_frame_no_face": round(
            sum(r["false"] for n, r in rows.items() if n.startswith("noface")) /
            max(1, sum(r["frames"] for n, r in rows.items() if n.startswith("noface"))), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=BACKENDS[0], choices=BACKENDS)
    parser.add_argument("--retinaface-weights")
    parser.add_argument("--landmark-weights")
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--speed-seconds", type=float, default=4.0, help="length of the speed videos")
    parser.add_argument("--long-seconds", type=float, default=60.0,
                        help="length of the 720p talking-head video (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"what to measure, of {','.join(PARTS)}")
    args = parser.parse_args()
    backend = make_backend(args.backend, retinaface_weights=args.retinaface_weights,
                           landmark_weights=args.landmark_weights)
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))}")
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="ftcn-bench-faces-") as folder:
        for name, spec in grid(args.quick) if "grid" in parts else ():
            rows[name] = {**measure(backend, spec, Path(folder)), "spec": asdict(spec)}
            row = rows[name]
            print(f"{name:18s} found {row['found']:3d}/{row['truth']:3d}  false {row['false']:3d}  "
                  f"imprecise {row['imprecise']:3d}", flush=True)
        ms = speed(backend, Path(folder), args.speed_seconds) if "speed" in parts else None
        long = long_talking_head(backend, Path(folder), args.long_seconds) if args.long_seconds and "long" in parts \
            else None
        newcomers = newcomer_latency(backend, Path(folder)) if "newcomers" in parts else None
        looked = second_look_cost(backend, Path(folder)) if "second-look" in parts else None

    figures = {"backend": args.backend, **(grid_figures(rows) if rows else {}), "ms_per_frame": ms,
               "talking_head_720p": long, "newcomers_720p": newcomers, "second_look_10s_720p_no_face": looked}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "scenes": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
