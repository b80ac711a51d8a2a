"""The GPU benchmark is ready before a GPU is: its rehearsal runs every part on the CPU, and without CUDA the
benchmark says so and exits 0."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_gpu() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_gpu", module)
    spec.loader.exec_module(module)
    return module


def test_rehearsal_runs_every_part_and_the_model_sees_faces(tmp_path: Path) -> None:
    bench = _bench_gpu()
    out = tmp_path / "figures.json"
    assert bench.main(["--rehearse", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    scale = bench.rehearsal()
    measured = {(row["dtype"], row["batch"]) for row in figures["model"] if row.get("clips_per_s", 0) > 0}
    assert measured == {(dtype, batch) for dtype in ("float32", "bfloat16") for batch in scale.batches}
    assert [row["frames_per_pass"] for row in figures["detector_1080p"]] == list(scale.detector_batches)
    assert all(row["frames_per_s"] > 0 for row in figures["detector_1080p"])
    end = figures["end_to_end_1080p30"]
    assert end["frames"] == round(scale.seconds * 29.97)
    assert end["clips"] > 0, "the end-to-end run must classify clips, or its real-time factor leaves the model out"
    assert end["faces_backend"].startswith("dlib")
    assert end["real_time_factor"] == end["wall_s"] / scale.seconds


def test_without_cuda_it_says_so_and_exits_0(capsys) -> None:
    bench = _bench_gpu()
    reason = bench.no_gpu_reason()
    assert (reason is None) == torch.cuda.is_available()
    if reason is not None:
        assert bench.main([]) == 0
        assert capsys.readouterr().out.strip() == reason
