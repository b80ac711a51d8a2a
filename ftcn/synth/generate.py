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
- **faceswap** (``--methods faceswap``): another identity's face, warped onto the target's landmarks in every frame
  and blended in by Poisson cloning (``faceswap.py``), as the FaceSwap subset of FaceForensics++ was made.

``--methods`` picks the forgery methods; each fake is made by one of them, in turn (``labels.csv`` names it, so a
model can be scored per method). Without it, fakes are the classic mix: ``jitter`` plus a random choice of the
other paste artifacts. Real videos come from the talking face, the photo, and a still group photo of several faces
that the camera pans across (a real that moves, but where no face moves by itself).
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

from ftcn.errors import BadOption
from ftcn.synth.faceswap import SourceFace, swap_face
from ftcn.video.decode import iter_frames
from ftcn.video.encode import write_video

ARTIFACTS = ("jitter", "flicker", "mask", "stutter")
METHODS = (*ARTIFACTS, "faceswap")
SOURCES = ("talking_face", "photo", "group")
FRAME_SIZE = (176, 144)  # width, height: the sample's own size keeps generation fast


@dataclass(frozen=True)
class SynthSpec:
    video_id: str
    label: str  # "real" | "fake"
    source: str  # "talking_face" | "photo" | "group"
    seed: int
    frames: int
    artifacts: tuple[str, ...]
    method: str = ""  # the forgery method of a fake made with --methods (one of METHODS), "" for the classic mix


def media_dir() -> Path:
    return Path(str(resources.files("ftcn.synth").joinpath("media")))


def _source_frames(source: str, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Consecutive frames of the talking face (random start, played back and forth), or the photo repeated."""
    if source == "talking_face":
        video = [f.rgb for f in iter_frames(media_dir() / "carphone_pristine.mp4")]
        loop = video + video[-2:0:-1]
        start = int(rng.integers(0, len(loop)))
        return [loop[(start + i) % len(loop)] for i in range(frames)]
    if source == "group":
        return _pan(_group_photo(), frames, rng)
    still = cv2.resize(_astronaut()[40:232, 110:334], FRAME_SIZE, interpolation=cv2.INTER_AREA)
    return [still] * frames  # the face and shoulders, about the sample's aspect ratio


@functools.lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media_dir() / "astronaut.png")), cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=1)
def _sample_frames() -> tuple[np.ndarray, ...]:
    return tuple(f.rgb for f in iter_frames(media_dir() / "carphone_pristine.mp4"))


@functools.lru_cache(maxsize=1)
def _group_photo() -> np.ndarray:
    """A still photo of four people side by side (the shipped faces, two of them mirrored), 3x the frame wide."""
    width, height = FRAME_SIZE
    portraits = [cv2.resize(_astronaut()[30:250, 100:344], (118, 106), interpolation=cv2.INTER_AREA),
                 cv2.resize(_sample_frames()[10][4:140, 20:160], (118, 106), interpolation=cv2.INTER_AREA)]
    portraits += [portraits[1][:, ::-1], portraits[0][:, ::-1]]
    wall = np.linspace(150, 200, 3 * width)[None, :, None] * np.array([1.0, 0.95, 0.85])
    photo = np.broadcast_to(wall, (height, 3 * width, 3)).astype(np.uint8).copy()
    for index, portrait in enumerate(portraits):
        x, y = 20 + index * 130, 20 + (index % 2) * 14
        photo[y:y + portrait.shape[0], x:x + portrait.shape[1]] = portrait
    return photo


#: Pixels per frame of the pan across the group photo: slow, as a camera operator pans over a photo (a face
#: crosses the frame in about three seconds at 25 fps).
PAN_PX_PER_FRAME = 2.5


def _pan(photo: np.ndarray, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A camera sliding slowly and evenly across a still photo wider than the frame, from a random place (sub-pixel
    steps: whole-pixel steps would alternate unevenly, a jerk no camera makes)."""
    width, height = FRAME_SIZE
    room = photo.shape[1] - width
    travel = min(room, PAN_PX_PER_FRAME * (frames - 1))
    start = rng.uniform(0, room - travel)
    offsets = start + np.linspace(0, travel, frames)
    return [cv2.warpAffine(photo, np.float32([[1, 0, -x], [0, 1, 0]]), (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT) for x in offsets]


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


@functools.lru_cache(maxsize=4)
def source_face(name: str) -> SourceFace:
    """A shipped identity to swap in: the astronaut (the photo) or the man of the talking-face sample."""
    image = _astronaut() if name == "astronaut" else _sample_frames()[30]
    faces = _detector().detect(image)
    if not faces or faces[0].landmarks68 is None:
        raise RuntimeError(f"no face found in the shipped {name} image")
    return SourceFace(name, image, faces[0].landmarks68.astype(np.float64))


def swap_identity(spec: SynthSpec) -> str:
    """The identity a face-swap fake gets: never the one already in the video."""
    if spec.source == "talking_face":
        return "astronaut"
    if spec.source == "photo":
        return "carphone"
    return ("astronaut", "carphone")[spec.seed % 2]


#: A frame-by-frame face-swap tool fits every frame on its own, and its fit is off by a little each time: the
#: whole face by about this share of the face's width, and each landmark by half of it (FaceForensics++'s FaceSwap
#: flickers this way; it is the temporal incoherence FTCN looks for).
FIT_NOISE = 0.015


def _swap_faces(frames: list[np.ndarray], spec: SynthSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """Every face of every frame replaced by another identity (landmarks found anew per frame, fitted with a
    little noise; a frame where no face is found keeps the last fit, as a swap tool carries its last fit)."""
    out, last = [], []
    identities = ("astronaut", "carphone")
    for frame in frames:
        found = [f.landmarks68 for f in _detector().detect(np.clip(frame, 0, 255).astype(np.uint8))
                 if f.landmarks68 is not None]
        last = found or last
        swapped = frame
        for index, landmarks in enumerate(last):
            width = float(np.ptp(landmarks[:, 0]))
            fitted = (landmarks + rng.normal(0, FIT_NOISE * width, (1, 2))
                      + rng.normal(0, FIT_NOISE * width / 2, landmarks.shape))
            identity = swap_identity(spec) if index == 0 else identities[(spec.seed + index) % 2]
            swapped = swap_face(swapped, fitted, source_face(identity))
        out.append(swapped)
    return out


def render(spec: SynthSpec) -> list[np.ndarray]:
    """The frames of one synthetic video (uint8 RGB); deterministic for the spec."""
    rng = np.random.default_rng(spec.seed)
    frames, matrices = _camera(_source_frames(spec.source, spec.frames, rng), rng)
    if spec.label == "fake" and spec.method == "faceswap":
        frames = _swap_faces(frames, spec, rng)
    elif spec.label == "fake":
        frames = _paste_incoherent_face(frames, _face_box(frames[0]), matrices, spec.artifacts, rng)
    noise = np.random.default_rng(spec.seed + 1)
    return [np.clip(f + noise.normal(0, 2.0, f.shape), 0, 255).astype(np.uint8) for f in frames]


def plan(videos: int, seed: int, frames: int, methods: tuple[str, ...] | None = None) -> list[SynthSpec]:
    """Half real, half fake; each fake has a real twin (same source, camera and seed) for paired checks. With
    ``methods``, the fakes take them in turn, one each; without, the classic mix of paste artifacts. Every face of
    a fake is forged (each face of a fake video is labelled fake in training)."""
    rng = np.random.default_rng(seed)
    specs = []
    for pair in range((videos + 1) // 2):
        # with --methods, a third of the pairs each: a talking face, the photo, the group photo panned across
        source = SOURCES[pair % 3] if methods else ("talking_face" if pair % 3 != 2 else "photo")
        video_seed = int(rng.integers(0, 2**31))
        # jitter is what every frame-by-frame swap has; the other artifacts come on top, at random
        extra = int(rng.integers(0, len(ARTIFACTS)))
        others = rng.choice(ARTIFACTS[1:], size=extra, replace=False).tolist()
        artifacts, method = tuple(sorted(["jitter", *others])), ""
        if methods:
            method = methods[pair % len(methods)]
            artifacts = (method,)
        specs.append(SynthSpec(f"real_{pair:04d}", "real", source, video_seed, frames, ()))
        # the paste artifacts follow one face by the camera's own motion, which a pan across the group photo is
        # not: their twin of a group photo is a talking face (face swaps find every face in every frame)
        fake_source = "talking_face" if source == "group" and method != "faceswap" else source
        specs.append(SynthSpec(f"fake_{pair:04d}", "fake", fake_source, video_seed, frames, artifacts, method))
    return specs[:videos]


def parse_methods(text: str | None) -> tuple[str, ...] | None:
    """``--methods jitter,faceswap`` -> ("jitter", "faceswap"); None keeps the classic mix."""
    if not text:
        return None
    methods = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise BadOption(f"--methods takes a comma-separated list of {', '.join(METHODS)}; not {', '.join(unknown)}")
    return methods


def generate(out: str | Path, videos: int, seed: int, frames: int = 48, fps: float = 25.0,
             methods: tuple[str, ...] | None = None) -> Path:
    """Write ``out/real/*.mp4``, ``out/fake/*.mp4``, ``manifest.csv`` (path,label), ``labels.csv``
    (path,label,method: what ``ftcn predict`` and ``ftcn evaluate`` score per method) and ``synth.json``."""
    out = Path(out)
    specs = plan(videos, seed, frames, methods)
    rows = []
    for spec in specs:
        path = out / spec.label / f"{spec.video_id}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, render(spec), fps=fps)
        method = spec.method or ("+".join(spec.artifacts) if spec.label == "fake" else "")
        rows.append({"path": f"{spec.label}/{path.name}", "label": spec.label, "method": method})
    for name, fields in (("manifest.csv", ["path", "label"]), ("labels.csv", ["path", "label", "method"])):
        with open(out / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    (out / "synth.json").write_text(json.dumps({"seed": seed, "methods": list(methods or ()), "synthetic": True,
                                                "videos": [asdict(s) for s in specs]}, indent=2))
    return out


def looped_sample(path: Path, seconds: float, width: int = 1280, height: int = 720, fps: float = 29.97) -> Path:
    """A long talking-head video: the sample looped forwards and backwards (no jump cuts), scaled into a
    ``width`` x ``height`` frame (the benchmarks' long 720p video, the segment tests' long one)."""
    from ftcn.video.decode import iter_frames
    from ftcn.video.encode import VideoWriter

    frames = [f.rgb for f in iter_frames(media_dir() / "carphone_pristine.mp4")]
    loop = frames + frames[-2:0:-1]
    scale = height / frames[0].shape[0]
    scaled_w = min(width, int(round(frames[0].shape[1] * scale)))
    left = (width - scaled_w) // 2
    with VideoWriter(path, width, height, fps, preset="ultrafast") as writer:
        for i in range(int(round(seconds * fps))):
            canvas = np.zeros((height, width, 3), dtype=np.uint8)
            canvas[:, left : left + scaled_w] = cv2.resize(loop[i % len(loop)], (scaled_w, height))
            writer.write(canvas)
    return path

