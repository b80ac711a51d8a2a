"""Where the model runs: OpenVINO on a CPU by default (ONNX Runtime by choice), both reading one graph exported once
per weights and checked, torch otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ftcn import runtime
from ftcn.errors import BadOption
from ftcn.models import build_model, config_for_size
from ftcn.precision import MAX_PROBABILITY_DELTA
from ftcn.export import cache_folder
from ftcn.runtime import engine_for


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(config_for_size("tiny")).eval()


def _clips(model, batch: int) -> torch.Tensor:
    cfg = model.cfg
    return torch.randn(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("choice,runtime_name", [("auto", "openvino"), ("openvino", "openvino"),
                                                  ("onnxruntime", "onnxruntime")])
def test_the_cpu_runtimes_give_torch_fp32_probabilities(choice: str, runtime_name: str) -> None:
    model = _tiny()
    engine = engine_for(model, choice)
    assert engine.describe() == {"runtime": runtime_name, "precision": "fp32"}
    for batch in (1, 3):  # the exported graph's batch dimension is free
        clips = _clips(model, batch)
        with torch.inference_mode():
            expected = torch.sigmoid(model(clips))
        got = torch.sigmoid(engine(clips))
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() <= MAX_PROBABILITY_DELTA
    assert engine_for(model, choice) is engine  # built once per model in a process


def test_openvino_is_checked_once_per_graph_and_a_failed_check_leaves_the_default_to_onnxruntime(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine_for(_tiny(seed=3), "openvino")
    assert len(list(cache_folder().glob("*.onnx.openvino-*.checked"))) == 1
    checks = []
    monkeypatch.setattr(runtime, "check_against_torch", lambda *args, **kwargs: checks.append(args))
    engine_for(_tiny(seed=3), "openvino")  # same weights, same OpenVINO: checked already
    assert checks == []

    def failing(*args, **kwargs):
        raise RuntimeError("the compiled graph moves probabilities by 0.5000; not used")

    for seed in (4, 5):  # their graphs exported (and checked for ONNX Runtime) before OpenVINO's check breaks
        engine_for(_tiny(seed=seed), "onnxruntime")
    monkeypatch.setattr(runtime, "check_against_torch", failing)
    assert engine_for(_tiny(seed=4)).runtime == "onnxruntime"
    with pytest.raises(RuntimeError, match="moves probabilities"):
        engine_for(_tiny(seed=5), "openvino")


def test_fewer_threads_give_the_same_logits() -> None:
    """The stream asks for one thread fewer while faces are found beside the model: a second session, same graph."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = _tiny()
        engine = engine_for(model)
    finally:
        torch.set_num_threads(threads)
    clips = _clips(model, 2)
    assert torch.equal(engine(clips, 1), engine(clips))
    assert torch.equal(engine(clips, 99), engine(clips))  # never more threads than the engine's own


def test_an_export_is_made_once_per_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    engine_for(_tiny(seed=0))
    graphs = sorted(cache_folder().glob("*.onnx"))
    assert len(graphs) == 1 and not list(cache_folder().glob("*.part"))

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    engine_for(_tiny(seed=0))  # same weights in a new model object (a new process would see the same): the cache
    with pytest.raises(AssertionError, match="exported again"):
        engine_for(_tiny(seed=1), "onnxruntime")  # other weights: another graph


def test_a_failed_export_leaves_the_default_to_torch_and_fails_an_explicit_choice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(torch.onnx, "export", broken)
    engine = engine_for(_tiny())
    assert engine.runtime == "torch" and engine.precision in ("fp32", "bf16")
    with pytest.raises(RuntimeError, match="exporter broke"):
        engine_for(_tiny(seed=2), "onnxruntime")


def test_choices_that_cannot_work_are_refused() -> None:
    with pytest.raises(BadOption, match="runtime must be one of"):
        engine_for(_tiny(), "tensorrt")
    with pytest.raises(BadOption, match="computes in fp32, not bf16"):
        engine_for(_tiny(), "onnxruntime", "bf16")
    with pytest.raises(BadOption, match="int8 runs in OpenVINO only"):
        engine_for(_tiny(), "torch", "int8")
    with pytest.raises(BadOption, match="no int8 graph on this machine"):
        engine_for(_tiny(seed=3), "openvino", "int8")  # made only when the model's check passes int8
    assert engine_for(_tiny(), "torch", "fp32").describe() == {"runtime": "torch", "precision": "fp32"}
