"""A labelled real/fake video set made from real faces that ship with the project (``ftcn synth``).

We have no licensed deepfake dataset on these machines, so tests and the demo need data whose labels are known.
Both classes start from the same real footage (the talking-face sample, or the face photo animated), filmed by a
virtual camera that pans, zooms and rotates smoothly, with slow lighting drift, sensor noise and H.264 compression.

- **real**: only that. The face moves coherently with the rest of the frame.
- **fake**: the same footage, with the face region replaced the way frame-by-frame face swaps do it: each frame
  gets the face re-warped and blended back independently, so it is temporally incoherent. Every fake has ``jitter``; the
  others are added at random (each fake records which ones it got in ``synth.json``):
  ``jitter``  - the pasted face is shifted/scaled/rotated by a small random amount, new every frame;
  ``flicker`` - its colour (per-channel gain) changes from frame to frame;
  ``mask``    - the blending mask's feather and size change from frame to frame;
  ``stutter`` - a few frames paste the face from a neighbouring frame (out of step with the head motion).
Everything is deterministic for a seed.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from ftcn.video.decode import iter_frames
from ftcn.video.encode import write_video

ARTIFACTS = ("jitter", "flicker", "mask", "stutter")
FRAME_SIZE = (176, 144)  # width, height: the sample's own size keeps generation fast


@dataclass(frozen=True)
class SynthSpec:
    video_id: str
    label: str  # "real" | "fake"
    source: str  # "talking_face" | "photo"
    seed: int
    frames: int
    artifacts: tuple[str, ...]


def media_dir() -> Path:
    return Path(str(resources.files("ftcn.synth").joinpath("media")))


def _source_frames(source: str, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Consecutive frames of the talking face (random start, played back and forth), or the photo repeated."""
    if source == "talking_face":
        video = [f.rgb for f in iter_frames(media_dir() / "carphone_pristine.mp4")]
        loop = video + video[-2:0:-1]
        start = int(rng.integers(0, len(loop)))
        return [loop[(start + i) % len(loop)] for i in range(frames)]
    photo = cv2.cvtColor(cv2.imread(str(media_dir() / "astronaut.png")), cv2.COLOR_BGR2RGB)
    head = photo[40:232, 110:334]  # the face and shoulders, about the sample's aspect ratio
    still = cv2.resize(head, FRAME_SIZE, interpolation=cv2.INTER_AREA)
    return [still] * frames


def _smooth_path(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """A smooth random trajectory: a sum of two slow sinusoids with random phases."""
    t = np.arange(frames) / max(1, frames - 1)
    path = np.zeros(frames)
    for _ in range(2):
        path += amplitude / 2 * np.sin(2 * np.pi * (rng.uniform(0.2, 0.8) * t + rng.uniform(0, 1)))
    return path


def _camera(frames: list[np.ndarray], rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pan/zoom/rotate, lighting drift: returns frames and the 2x3 matrices used (to find the face again)."""
    n = len(frames)
    width, height = FRAME_SIZE
    dx, dy = _smooth_path(rng, n, 10), _smooth_path(rng, n, 8)
    zoom = 1.08 + _smooth_path(rng, n, 0.08)
    angle = _smooth_path(rng, n, 5)
    gain = 1.0 + _smooth_path(rng, n, 0.15)
    out, matrices = [], []
    for i, frame in enumerate(frames):
        frame = cv2.resize(frame, FRAME_SIZE, interpolation=cv2.INTER_AREA)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle[i], zoom[i])
        matrix[:, 2] += (dx[i], dy[i])
        moved = cv2.warpAffine(frame, matrix, FRAME_SIZE, borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip(moved.astype(np.float32) * gain[i], 0, 255))
        matrices.append(matrix)
    return out, matrices


@functools.lru_cache(maxsize=1)
def _detector():
    """One dlib backend per process: loading the shape predictor takes a second or two."""
    from ftcn.faces.backends import DlibBackend

    return DlibBackend()


def _face_box(frame: np.ndarray) -> np.ndarray:
    """Where to paste: the face found by the offline detector, or the frame's centre if none is found."""
    faces = _detector().detect(frame.astype(np.uint8))
    if faces:
        return faces[0].box
    width, height = FRAME_SIZE
    return np.array([width * 0.3, height * 0.2, width * 0.7, height * 0.7])


def _paste_incoherent_face(frames: list[np.ndarray], box: np.ndarray, matrices: list[np.ndarray],
                           artifacts: tuple[str, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Re-warp and blend the face region back into every frame independently (the face-swap signature)."""
    width, height = FRAME_SIZE
    x1, y1, x2, y2 = box
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    half = np.array([(x2 - x1) / 2, (y2 - y1) / 2]) * 1.1
    out = []
    for i, frame in enumerate(frames):
        source_index = i
        if "stutter" in artifacts and rng.random() < 0.15:
            source_index = int(np.clip(i + rng.choice([-3, -2, 2, 3]), 0, len(frames) - 1))
        # the face follows the camera, measured on the first frame and moved by the camera's own matrix change
        moved_centre = _move(centre, matrices[0], matrices[i])
        shift = rng.normal(0, 1.6, 2) if "jitter" in artifacts else np.zeros(2)
        scale = 1 + (rng.normal(0, 0.035) if "jitter" in artifacts else 0)
        angle = rng.normal(0, 2.5) if "jitter" in artifacts else 0.0
        source_centre = _move(centre, matrices[0], matrices[source_index])
        warp = cv2.getRotationMatrix2D(tuple(source_centre), angle, scale)
        warp[:, 2] += moved_centre + shift - source_centre
        face = cv2.warpAffine(frames[source_index], warp, FRAME_SIZE, borderMode=cv2.BORDER_REFLECT)
        if "flicker" in artifacts:
            face = face * rng.normal(1.0, 0.05, 3).astype(np.float32)
        size = half * (rng.uniform(0.9, 1.1) if "mask" in artifacts else 1.0)
        feather = rng.uniform(2, 8) if "mask" in artifacts else 5.0
        mask = np.zeros((height, width), np.float32)
        cv2.ellipse(mask, tuple(int(v) for v in moved_centre), tuple(int(v) for v in size), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), feather)[..., None]
        out.append(frame * (1 - mask) + face * mask)
    return out


def _move(point: np.ndarray, first: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Where a point of the first frame is in the current one, given both frames' camera matrices."""
    inverse_first = cv2.invertAffineTransform(first)
    original = inverse_first[:, :2] @ point + inverse_first[:, 2]
    return current[:, :2] @ original + current[:, 2]


def render(spec: SynthSpec) -> list[np.ndarray]:
    """The frames of one synthetic video (uint8 RGB); deterministic for the spec."""
    rng = np.random.default_rng(spec.seed)
    frames, matrices = _camera(_source_frames(spec.source, spec.frames, rng), rng)
    if spec.label == "fake":
        frames = _paste_incoherent_face(frames, _face_box(frames[0]), matrices, spec.artifacts, rng)
    noise = np.random.default_rng(spec.seed + 1)
    return [np.clip(f + noise.normal(0, 2.0, f.shape), 0, 255).astype(np.uint8) for f in frames]


def plan(videos: int, seed: int, frames: int) -> list[SynthSpec]:
    """Half real, half fake; each fake has a real twin (same source, camera and seed) for paired checks."""
    rng = np.random.default_rng(seed)
    specs = []
    for pair in range((videos + 1) // 2):
        source = "talking_face" if pair % 3 != 2 else "photo"
        video_seed = int(rng.integers(0, 2**31))
        # jitter is what every frame-by-frame swap has; the other artifacts come on top, at random
        extra = int(rng.integers(0, len(ARTIFACTS)))
        others = rng.choice(ARTIFACTS[1:], size=extra, replace=False).tolist()
        artifacts = tuple(sorted(["jitter", *others]))
        specs.append(SynthSpec(f"real_{pair:04d}", "real", source, video_seed, frames, ()))
        specs.append(SynthSpec(f"fake_{pair:04d}", "fake", source, video_seed, frames, artifacts))
    return specs[:videos]


def generate(out: str | Path, videos: int, seed: int, frames: int = 48, fps: float = 25.0) -> Path:
    """Write ``out/real/*.mp4``, ``out/fake/*.mp4``, ``manifest.csv`` (path,label) and ``synth.json``."""
    out = Path(out)
    specs = plan(videos, seed, frames)
    rows = []
    for spec in specs:
        path = out / spec.label / f"{spec.video_id}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, render(spec), fps=fps)
        rows.append({"path": f"{spec.label}/{path.name}", "label": spec.label})
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "synth.json").write_text(json.dumps({"seed": seed, "videos": [asdict(s) for s in specs]}, indent=2))
    return out
