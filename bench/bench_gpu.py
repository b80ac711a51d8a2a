"""The GPU benchmark, ready for the day a GPU is lent: ``make bench-gpu``, under 8 minutes on one GPU.

1. The full FTCN+TT model: clips/s at batch 1, 2, 4, 8, 16 and 32, in fp32 and bf16 (channels-last-3d,
   inference mode), with peak GPU memory; a batch that does not fit is reported as such.
2. Face detection on the GPU: RetinaFace (mobilenet0.25, recipe weights in the official format) and the landmark
   network on 1080p frames, frames/s at detector batches of 1, 8, 16 and 32.
3. End to end: a 60-s 1080p30 talking-head video (the shipped sample looped and scaled, as the long-video
   benchmarks make it) through ``predict_video`` with the full model on the GPU, wall time, stage split and the
   real-time factor (wall / video duration). Faces come from RetinaFace on the GPU when the official weight files
   are given (``--retinaface-weights``, ``--landmark-weights``, as a worker has them); recipe weights find no face,
   so that no model would run, and without the files the faces come from the default dlib backend (CPU). The row
   says which, and how many clips the model classified.

Weights are the parity recipe's (random): speed only, never a verdict. On a machine without CUDA (or with a CPU
build of torch) it says so and exits 0.

``--rehearse`` runs every part on the CPU at a small scale (tiny model, batches of 1-2, a 1-s 1080p video), so
that the code a GPU would run is exercised before one is lent: the suite runs it
(``tests/ftcn/test_bench_gpu.py``). Its figures are not a GPU's.

    make bench-gpu                        # or: python bench/bench_gpu.py [--json out.json] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32)
DETECTOR_BATCHES = (1, 8, 16, 32)


@dataclass(frozen=True)
class Scale:
    """What is measured, and where: the GPU run, or its CPU rehearsal."""

    device: str = "cuda"
    retinaface_weights: Path | None = None  # the official files, for the end-to-end run's faces
    landmark_weights: Path | None = None
    model: str = "full"
    batches: tuple[int, ...] = BATCHES
    detector_batches: tuple[int, ...] = DETECTOR_BATCHES
    repeats: int = 5
    seconds: float = 60.0


def rehearsal() -> Scale:
    return Scale(device="cpu", model="tiny", batches=(1, 2), detector_batches=(1, 2), repeats=1, seconds=1.0)


def no_gpu_reason() -> str | None:
    if not torch.cuda.is_available():
        build = "a CPU build of torch" if torch.version.cuda is None else "no CUDA device visible"
        return (f"bench-gpu measures a GPU; this machine has {build} (torch {torch.__version__}). Run it where a "
                "GPU and a CUDA torch are, e.g. inside the worker image: docker compose run --rm worker python "
                "bench/bench_gpu.py")
    return None


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(run, repeats: int, device: str) -> float:
    run()  # warm-up: cuDNN autotuning, allocator
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def model_rows(scale: Scale) -> list[dict[str, Any]]:
    from bench_model import _model

    from ftcn.precision import compute_in

    device, on_gpu = scale.device, scale.device == "cuda"
    torch.backends.cudnn.benchmark = True
    model = _model(scale.model, device).to(memory_format=torch.channels_last_3d)
    cfg = model.cfg
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for batch in scale.batches:
            if on_gpu:
                torch.cuda.reset_peak_memory_stats()
            try:
                clips = torch.randn(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device=device)
                clips = clips.contiguous(memory_format=torch.channels_last_3d)

                def run(clips: torch.Tensor = clips, dtype: torch.dtype = dtype) -> None:
                    with torch.inference_mode(), compute_in(dtype, device):
                        model(clips)

                seconds = _timed(run, scale.repeats, device)
                row = {"dtype": str(dtype).removeprefix("torch."), "batch": batch, "s_per_batch": seconds,
                       "clips_per_s": batch / seconds,
                       "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None}
            except torch.cuda.OutOfMemoryError:
                row = {"dtype": str(dtype).removeprefix("torch."), "batch": batch, "error": "out of GPU memory"}
            finally:
                clips = None
                if on_gpu:
                    torch.cuda.empty_cache()
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def detector_rows(folder: Path, scale: Scale) -> list[dict[str, Any]]:
    from ftcn.faces.backends import make_backend
    from tests.parity_recipe import write_recipe_detector_files

    detector, landmarks = write_recipe_detector_files(folder)
    backend = make_backend("retinaface", device=scale.device, retinaface_weights=detector,
                           landmark_weights=landmarks)
    frame = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    rows = []
    for batch in scale.detector_batches:
        frames = [frame] * batch
        seconds = _timed(lambda frames=frames: backend.detect_many(frames), scale.repeats, scale.device)
        row = {"frames_per_pass": batch, "s_per_pass": seconds, "frames_per_s": batch / seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def end_to_end(folder: Path, scale: Scale) -> dict[str, Any]:
    from bench_model import _model
    from bench_predict import make_long_video

    from ftcn.checkpoints import Checkpoint, model_from_checkpoint
    from ftcn.faces.backends import make_backend
    from ftcn.faces.names import DEFAULT_BACKEND
    from ftcn.predict.pipeline import PredictOptions, predict_video
    from ftcn.video.decode import VideoLimits
    seconds = scale.seconds
    video = make_long_video(folder / "long-1080p.mp4", seconds, width=1920, height=1080)
    network = _model(scale.model, "cpu")
    checkpoint = Checkpoint(network.cfg, network.state_dict(), metadata={"purpose": "benchmark, recipe weights"})
    model = model_from_checkpoint(checkpoint, scale.device)
    official = scale.retinaface_weights is not None and scale.landmark_weights is not None
    backend = make_backend("retinaface", device=scale.device, retinaface_weights=scale.retinaface_weights,
                           landmark_weights=scale.landmark_weights) if official \
        else make_backend(DEFAULT_BACKEND, device=scale.device)
    options = PredictOptions(limits=VideoLimits(max_duration_s=3600, max_frames=10**6), second_look=False)
    start = time.perf_counter()
    result = predict_video(video, model, checkpoint, backend, options)
    wall = time.perf_counter() - start
    row = {"video_s": seconds, "frames": result["input"]["frames_read"], "wall_s": wall,
           "real_time_factor": wall / seconds, "timings_s": result["timings_s"],
           "clips": sum(t["clips"] for t in result["tracks"]), "precision": result["options"]["precision"],
           "faces_backend": "retinaface (official weights)" if official else "dlib (CPU)"}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the end-to-end 1080p30 video")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--retinaface-weights", type=Path, help="official mobilenet0.25_Final.pth (end to end)")
    parser.add_argument("--landmark-weights", type=Path, help="official landmark network .pth.tar (end to end)")
    parser.add_argument("--rehearse", action="store_true",
                        help="run every part on the CPU at a small scale (checks the code, not a GPU's figures)")
    args = parser.parse_args(argv)
    if args.rehearse:
        scale = rehearsal()
        device_name = "CPU rehearsal (not GPU figures)"
    else:
        reason = no_gpu_reason()
        if reason:
            print(reason)
            return 0
        scale = Scale(repeats=args.repeats, seconds=args.seconds, retinaface_weights=args.retinaface_weights,
                      landmark_weights=args.landmark_weights)
        device_name = torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {device_name}; recipe weights "
          "(speed only, no verdicts)", flush=True)
    started = time.perf_counter()
    figures: dict[str, Any] = {"device": device_name, "torch": torch.__version__}
    with tempfile.TemporaryDirectory(prefix="ftcn-bench-gpu-") as folder:
        figures["model"] = model_rows(scale)
        figures["detector_1080p"] = detector_rows(Path(folder), scale)
        figures["end_to_end_1080p30"] = end_to_end(Path(folder), scale)
    figures["bench_s"] = time.perf_counter() - started
    print(f"bench-gpu finished in {figures['bench_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
