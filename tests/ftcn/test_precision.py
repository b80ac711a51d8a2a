"""The number format the model computes in: how it is chosen, and the accuracy guard that lets bf16 be the default.

bf16 is an explicit choice (it does not hold the guard reliably on trained models, see ftcn.precision). On the
full-size network with the parity recipe weights and inputs, bf16 autocast with the early stages in fp32 keeps every
clip probability within ``MAX_PROBABILITY_DELTA`` of what the official code computed in fp32 (the fixture); this
checks that the mixed-precision path stays what it is. It runs on any CPU (emulated bf16 is slow, but the numbers
are the same).
"""

from __future__ import annotations

import pytest
import torch

from ftcn.errors import BadOption
from ftcn.models import build_model, full_config
from ftcn.precision import MAX_PROBABILITY_DELTA, compute_in, native_bf16, resolve_precision
from tests.parity_recipe import load_json, parity_dir, recipe_input, recipe_state_dict


def test_auto_is_fp32_and_bf16_only_where_the_device_computes_it_natively() -> None:
    assert resolve_precision("fp32", "cpu") == torch.float32
    assert resolve_precision("auto", "cpu") == torch.float32
    if native_bf16("cpu"):
        assert resolve_precision("bf16", "cpu") == torch.bfloat16
    else:
        with pytest.raises(BadOption, match="no native bf16"):
            resolve_precision("bf16", "cpu")
    with pytest.raises(BadOption, match="auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")


def _ftcn_cases() -> list:
    folder = parity_dir() / "ftcn_tt"
    return [pytest.param(case, id=f"case{i}") for i, case in enumerate(load_json(folder / "cases.json"))]


@pytest.mark.parity
@pytest.mark.parametrize("case", _ftcn_cases())
def test_bf16_stays_within_the_guard_of_the_official_fp32_probabilities(case: dict) -> None:
    model = build_model(full_config())
    model.load_state_dict(recipe_state_dict(load_json(parity_dir() / "ftcn_tt" / "keys.json"), case["weight_seed"]))
    model = model.eval().to(memory_format=torch.channels_last_3d)
    clips = recipe_input(case).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode(), compute_in(torch.bfloat16, "cpu"):
        probabilities = torch.sigmoid(model(clips).float())
    expected = torch.tensor(case["expected"]["probability"], dtype=torch.float32)
    assert (probabilities - expected).abs().max().item() <= MAX_PROBABILITY_DELTA
