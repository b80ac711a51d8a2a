"""Our networks against outputs of the official code, case by case, from whatever FTCN_PARITY_DIR holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn

from ftcn.models import box_ops, build_model, full_config
from ftcn.models.landmarks import MobileNetGDConv
from ftcn.models.retinaface import RetinaFace
from tests.parity_recipe import compare_summary, load_json, parity_dir, recipe_input, recipe_state_dict, tolerance_for

pytestmark = pytest.mark.parity


def _run_ftcn(model: nn.Module, inputs: torch.Tensor, case: dict[str, Any]) -> dict[str, torch.Tensor]:
    features = model.features(inputs)
    logits = model.resnet.head(features).squeeze(1)
    assert torch.equal(logits, model(inputs)), "forward must return the head's logits"
    return {"head_input_feature": features, "logit": logits, "probability": torch.sigmoid(logits)}


def _run_retinaface(model: nn.Module, inputs: torch.Tensor, case: dict[str, Any]) -> dict[str, torch.Tensor]:
    loc, conf, landms = model(inputs)
    priors = box_ops.prior_boxes(tuple(inputs.shape[2:]), model.cfg.min_sizes, model.cfg.steps)
    return {"loc": loc, "conf_softmax": conf, "landms": landms, "priors": torch.from_numpy(priors)}


def _run_landmarks(model: nn.Module, inputs: torch.Tensor, case: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {"landmarks": model(inputs)}


# A network is recognised by the first name of its state dict, so renamed or extra fixture folders still work.
NETWORKS: dict[str, tuple[Callable[[], nn.Module], Callable]] = {
    "resnet.": (lambda: build_model(full_config()), _run_ftcn),
    "body.stage1.": (RetinaFace, _run_retinaface),
    "pretrain_net.": (MobileNetGDConv, _run_landmarks),
}


def _network_for(keys: list[dict[str, Any]]) -> tuple[Callable[[], nn.Module], Callable]:
    first = keys[0]["name"]
    for prefix, network in NETWORKS.items():
        if first.startswith(prefix):
            return network
    raise AssertionError(f"no network of ours has a state dict starting with {first!r}")


def _folders() -> list[Path]:
    return sorted(p.parent for p in parity_dir().glob("*/keys.json"))


def _cases() -> list[Any]:
    params = []
    for folder in _folders():
        for index, _ in enumerate(load_json(folder / "cases.json")):
            params.append(pytest.param(folder, index, id=f"{folder.name}-case{index}"))
    return params


def test_parity_dir_has_cases() -> None:
    assert _folders(), f"no <network>/keys.json under {parity_dir()}"
    assert _cases(), f"no cases under {parity_dir()}"


@pytest.mark.parametrize("folder", _folders(), ids=lambda p: p.name)
def test_state_dict_keys_match_official(folder: Path) -> None:
    keys = load_json(folder / "keys.json")
    factory, _ = _network_for(keys)
    got = [(name, list(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in factory().state_dict().items()]
    want = [(e["name"], list(e["shape"]), e["dtype"]) for e in keys]
    assert len(got) == len(want), f"{len(got)} entries, official has {len(want)}"
    for position, (ours, theirs) in enumerate(zip(got, want)):
        assert ours == theirs, f"entry {position}: ours {ours}, official {theirs}"


@pytest.mark.parametrize("folder,index", _cases())
def test_outputs_match_official(folder: Path, index: int) -> None:
    keys = load_json(folder / "keys.json")
    case = load_json(folder / "cases.json")[index]
    factory, run = _network_for(keys)
    model = factory()
    model.load_state_dict(recipe_state_dict(keys, case["weight_seed"]), strict=True)
    model.eval()
    with torch.inference_mode():
        outputs = run(model, recipe_input(case), case)
    unknown = sorted(set(case["expected"]) - set(outputs))
    assert not unknown, f"the fixture expects outputs this test does not produce: {unknown}"
    for name, expected in case["expected"].items():
        atol, rtol = tolerance_for(case, name)
        if isinstance(expected, dict):
            compare_summary(outputs[name], expected, atol, rtol, name)
        else:
            compare_summary(outputs[name], {"values": expected, "shape": list(outputs[name].shape)}, atol, rtol, name)
