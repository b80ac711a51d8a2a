"""Training: the freeze option, --init from the official format, early failures, metrics, and the whole loop
synth -> preprocess -> split -> train -> evaluate -> predict on held-out videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ftcn.checkpoints import load_checkpoint
from ftcn.cli import main
from ftcn.errors import DatasetError
from ftcn.precision import MAX_PROBABILITY_DELTA, fastest_passed
from ftcn.training.metrics import choose_threshold, equal_error_rate, roc_auc
from ftcn.training.train import TrainConfig, train
from tests.datasets import write_clip_dataset
from tests.parity_recipe import load_json, parity_dir, recipe_state_dict

BALANCED = {"r1": ("real", "train"), "f1": ("fake", "train"), "r2": ("real", "train"), "f2": ("fake", "train"),
            "r3": ("real", "val"), "f3": ("fake", "val")}


def test_metrics_on_known_values() -> None:
    labels = [0, 0, 1, 1]
    assert roc_auc(labels, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc(labels, [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc(labels, [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert equal_error_rate(labels, [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert 0.2 < choose_threshold(labels, [0.1, 0.2, 0.3, 0.4]) < 0.3


def test_freeze_keeps_every_backbone_tensor_and_trains_the_head(tmp_path: Path) -> None:
    data = write_clip_dataset(tmp_path / "data", BALANCED, (8, 64, 3), clips_per_video=2)
    cfg = TrainConfig(epochs=1, batch_size=4, freeze=True, model_size="tiny", seed=0)
    torch.manual_seed(cfg.seed)
    train(str(data), tmp_path / "run", cfg)
    start = load_checkpoint(tmp_path / "run" / "last.pt")
    # rebuild the starting weights exactly as train() does (same seed, same builder) to compare
    from ftcn.models import build_model, tiny_config

    torch.manual_seed(cfg.seed)
    initial = build_model(tiny_config()).state_dict()
    head_changed = False
    for name, tensor in start.state_dict.items():
        if name.startswith("resnet.head."):
            head_changed |= not torch.equal(tensor, initial[name])
        else:
            assert torch.equal(tensor, initial[name]), f"backbone tensor {name} changed under --freeze"
    assert head_changed, "the head must train"


def test_without_freeze_the_backbone_trains(tmp_path: Path) -> None:
    data = write_clip_dataset(tmp_path / "data", BALANCED, (8, 64, 3), clips_per_video=2)
    torch.manual_seed(0)
    train(str(data), tmp_path / "run", TrainConfig(epochs=1, batch_size=4, seed=0))
    from ftcn.models import build_model, tiny_config

    torch.manual_seed(0)
    initial = build_model(tiny_config()).state_dict()
    trained = load_checkpoint(tmp_path / "run" / "last.pt").state_dict
    name = "resnet.s2.pathway0_res0.branch2.a.weight"
    assert not torch.equal(trained[name], initial[name])
    assert not torch.equal(trained["resnet.s1.pathway0_stem.bn.0.running_mean"],
                           initial["resnet.s1.pathway0_stem.bn.0.running_mean"])


def test_resume_continues_from_the_last_epoch(tmp_path: Path) -> None:
    data = write_clip_dataset(tmp_path / "data", BALANCED, (8, 64, 3), clips_per_video=2)
    train(str(data), tmp_path / "run", TrainConfig(epochs=1, batch_size=4))
    first = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    summary = train(str(data), tmp_path / "run", TrainConfig(epochs=3, batch_size=4, resume=True))
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert lines[0] == first[0] and [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]
    assert summary["epochs_run"] == 3


@pytest.mark.slow
def test_init_from_official_format_trains_one_step(tmp_path: Path) -> None:
    official = tmp_path / "ftcn_tt.pth"
    state = recipe_state_dict(load_json(parity_dir() / "ftcn_tt" / "keys.json"), weight_seed=0)
    torch.save({"module." + k: v for k, v in state.items()}, official)
    data = write_clip_dataset(tmp_path / "data", {"r": ("real", "train"), "f": ("fake", "train"),
                                                  "rv": ("real", "val"), "fv": ("fake", "val")}, (32, 224, 3))
    summary = train(str(data), tmp_path / "run",
                    TrainConfig(epochs=1, batch_size=2, init=str(official), max_steps=1, freeze=True,
                                check_precisions=False))
    assert summary["epochs_run"] == 1 and summary["init"] == str(official)
    trained = load_checkpoint(tmp_path / "run" / "last.pt")
    assert trained.config.name == "ftcn_tt"
    assert not torch.equal(trained.state_dict["resnet.head.time_T.mlp_head.1.weight"],
                           state["resnet.head.time_T.mlp_head.1.weight"])


def test_datasets_that_cannot_train_fail_early(tmp_path: Path) -> None:
    one_class = write_clip_dataset(tmp_path / "one", {"a": ("real", "train"), "b": ("real", "val")}, (8, 64, 3))
    with pytest.raises(ValueError, match="only one class"):
        train(str(one_class), tmp_path / "r1", TrainConfig(epochs=1))
    no_val = write_clip_dataset(tmp_path / "noval", {"a": ("real", "train"), "b": ("fake", "train")}, (8, 64, 3))
    with pytest.raises(ValueError, match="no validation clips"):
        train(str(no_val), tmp_path / "r2", TrainConfig(epochs=1))
    with pytest.raises(DatasetError, match="no manifest.csv"):
        train(str(tmp_path / "empty"), tmp_path / "r3", TrainConfig(epochs=1))
    missing = write_clip_dataset(tmp_path / "missing", BALANCED, (8, 64, 3))
    (missing / "clips" / "f2.npz").unlink()
    with pytest.raises(DatasetError, match="1 missing clip files, e.g. clips/f2.npz"):
        train(str(missing), tmp_path / "r4", TrainConfig(epochs=1))
    wrong = write_clip_dataset(tmp_path / "wrong", BALANCED, (8, 64, 3))
    with pytest.raises(ValueError, match="the model expects 32 frames"):
        official = tmp_path / "ftcn_tt.pth"
        torch.save(recipe_state_dict(load_json(parity_dir() / "ftcn_tt" / "keys.json"), 0), official)
        train(str(wrong), tmp_path / "r5", TrainConfig(epochs=1, init=str(official)))


@pytest.mark.slow
def test_synthetic_set_end_to_end(tmp_path: Path, capsys) -> None:
    """The acceptance path of the training issue, on CPU in about a minute."""
    synth, data, run = tmp_path / "synth", tmp_path / "data", tmp_path / "run"
    assert main(["synth", str(synth), "--videos", "24", "--seed", "2"]) == 0
    assert main(["preprocess", str(synth), str(data), "--workers", "2"]) == 0
    assert main(["split", str(data), "--val", "0.25", "--test", "0.25", "--seed", "0"]) == 0
    assert main(["train", str(data), "--out", str(run), "--epochs", "20", "--batch-size", "8", "--seed", "0"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_val"]["clip"]["auc"] >= 0.9
    assert summary["best_val"]["video"]["auc"] >= 0.9
    for name in ("best.pt", "last.pt", "metrics.jsonl", "loss.png", "auc.png"):
        assert (run / name).exists(), name

    assert main(["evaluate", str(run / "best.pt"), str(data), "--split", "val", "--out", str(run / "eval")]) == 0
    evaluation = json.loads((run / "eval" / "evaluation.json").read_text())
    assert evaluation["clip"]["auc"] >= 0.9 and (run / "eval" / "roc.png").exists()

    held_out = tmp_path / "held_out"
    assert main(["synth", str(held_out), "--videos", "2", "--seed", "99"]) == 0
    capsys.readouterr()
    verdicts = {}
    ways = {"default": [], "openvino-fp32": ["--precision", "fp32"],
            "torch-fp32": ["--runtime", "torch", "--precision", "fp32"]}
    passed = load_checkpoint(run / "best.pt").metadata["precision"]["passed"]  # training checked them
    for label in ("real", "fake"):
        results = {}
        for way, flags in ways.items():
            out = tmp_path / f"predict_{label}_{way}"
            assert main(["predict", str(held_out / label / f"{label}_0000.mp4"), "--weights", str(run / "best.pt"),
                         "--out", str(out), "--no-video", *flags]) == 0
            results[way] = json.loads((out / "result.json").read_text())
        verdicts[label] = results["default"]["verdict"]
        # by default the model runs in the fastest precision its own check passed (ftcn.precision_check) ...
        assert results["default"]["options"]["precision"] == fastest_passed(passed).value
        assert results["default"]["verdict"] == results["torch-fp32"]["verdict"]
        # ... and in fp32, the CPU runtime (OpenVINO) moves no clip, frame or face score by more than the guard
        # from torch fp32, the official-equivalent arithmetic
        assert results["openvino-fp32"]["options"]["runtime"] == "openvino"
        fast, exact = results["openvino-fp32"]["tracks"], results["torch-fp32"]["tracks"]
        assert [t["frames"] for t in fast] == [t["frames"] for t in exact] and fast
        for a, b in zip(fast, exact):
            pairs = [(x, y) for x, y in zip(a["timeline"] + [a["score"]], b["timeline"] + [b["score"]])
                     if y is not None]
            assert max(abs(x - y) for x, y in pairs) <= MAX_PROBABILITY_DELTA
    assert verdicts == {"real": "REAL", "fake": "FAKE"}
    assert np.isfinite(load_checkpoint(run / "best.pt").threshold)
