"""The GPU benchmark, ready for the day a GPU is lent: ``make bench-gpu``, under 8 minutes on one GPU.

1. The full FTCN+TT model: clips/s at batch 1, 2, 4, 8, 16 and 32, in fp32 and bf16 (channels-last-3d,
   inference mode), with peak GPU memory; a batch that does not fit is reported as such.
2. Face detection on the GPU: RetinaFace (mobilenet0.25, recipe weights in the official format) and the landmark
   network on 1080p frames, frames/s at detector batches of 1, 8, 16 and 32.
3. End to end: a 60-s 1080p30 talking-head video (the shipped sample looped and scaled, as the long-video
   benchmarks make it) through ``predict_video`` with the RetinaFace backend on the GPU and the full model,
   wall time, stage split and the real-time factor (wall / video duration).

Weights are the parity recipe's (random): speed only, never a verdict. On a machine without CUDA (or with a CPU
build of torch) it says so and exits 0.

    make bench-gpu                        # or: python bench/bench_gpu.py [--json out.json] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32)
DETECTOR_BATCHES = (1, 8, 16, 32)


def no_gpu_reason() -> str | None:
    if not torch.cuda.is_available():
        build = "a CPU build of torch" if torch.version.cuda is None else "no CUDA device visible"
        return (f"bench-gpu measures a GPU; this machine has {build} (torch {torch.__version__}). Run it where a "
                "GPU and a CUDA torch are, e.g. inside the worker image: docker compose run --rm worker python "
                "bench/bench_gpu.py")
    return None


def _timed(run, repeats: int) -> float:
    run()  # warm-up: cuDNN autotuning, allocator
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def model_rows(repeats: int) -> list[dict[str, Any]]:
    from bench_model import _model

    from ftcn.precision import compute_in

    torch.backends.cudnn.benchmark = True
    model = _model("full", "cuda").to(memory_format=torch.channels_last_3d)
    cfg = model.cfg
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for batch in BATCHES:
            torch.cuda.reset_peak_memory_stats()
            try:
                clips = torch.randn(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device="cuda")
                clips = clips.contiguous(memory_format=torch.channels_last_3d)

                def run(clips: torch.Tensor = clips, dtype: torch.dtype = dtype) -> None:
                    with torch.inference_mode(), compute_in(dtype, "cuda"):
                        model(clips)

                seconds = _timed(run, repeats)
                row = {"dtype": str(dtype).removeprefix("torch."), "batch": batch, "s_per_batch": seconds,
                       "clips_per_s": batch / seconds, "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20}
            except torch.cuda.OutOfMemoryError:
                row = {"dtype": str(dtype).removeprefix("torch."), "batch": batch, "error": "out of GPU memory"}
            finally:
                clips = None
                torch.cuda.empty_cache()
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def detector_rows(folder: Path, repeats: int) -> list[dict[str, Any]]:
    from ftcn.faces.backends import make_backend
    from tests.parity_recipe import write_recipe_detector_files

    detector, landmarks = write_recipe_detector_files(folder)
    backend = make_backend("retinaface", device="cuda", retinaface_weights=detector, landmark_weights=landmarks)
    frame = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    rows = []
    for batch in DETECTOR_BATCHES:
        frames = [frame] * batch
        seconds = _timed(lambda frames=frames: backend.detect_many(frames), repeats)
        row = {"frames_per_pass": batch, "s_per_pass": seconds, "frames_per_s": batch / seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def end_to_end(folder: Path, seconds: float) -> dict[str, Any]:
    from bench_model import _model
    from bench_predict import make_long_video

    from ftcn.checkpoints import Checkpoint, model_from_checkpoint
    from ftcn.faces.backends import make_backend
    from ftcn.predict.pipeline import PredictOptions, predict_video
    from ftcn.video.decode import VideoLimits
    from tests.parity_recipe import write_recipe_detector_files

    video = make_long_video(folder / "long-1080p.mp4", seconds, width=1920, height=1080)
    network = _model("full", "cpu")
    checkpoint = Checkpoint(network.cfg, network.state_dict(), metadata={"purpose": "benchmark, recipe weights"})
    model = model_from_checkpoint(checkpoint, "cuda")
    detector, landmarks = write_recipe_detector_files(folder)
    backend = make_backend("retinaface", device="cuda", retinaface_weights=detector, landmark_weights=landmarks)
    options = PredictOptions(limits=VideoLimits(max_duration_s=3600, max_frames=10**6), second_look=False)
    start = time.perf_counter()
    result = predict_video(video, model, checkpoint, backend, options)
    wall = time.perf_counter() - start
    row = {"video_s": seconds, "frames": result["input"]["frames_read"], "wall_s": wall,
           "real_time_factor": wall / seconds, "timings_s": result["timings_s"],
           "clips": sum(t["clips"] for t in result["tracks"]), "precision": result["options"]["precision"]}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the end-to-end 1080p30 video")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    reason = no_gpu_reason()
    if reason:
        print(reason)
        return 0
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}; recipe weights "
          "(speed only, no verdicts)", flush=True)
    started = time.perf_counter()
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    with tempfile.TemporaryDirectory(prefix="ftcn-bench-gpu-") as folder:
        figures["model"] = model_rows(args.repeats)
        figures["detector_1080p"] = detector_rows(Path(folder), args.repeats)
        figures["end_to_end_1080p30"] = end_to_end(Path(folder), args.seconds)
    figures["bench_s"] = time.perf_counter() - started
    print(f"bench-gpu finished in {figures['bench_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
