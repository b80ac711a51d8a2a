"""The reference fixtures' deterministic weight and input recipes (see reference_parity/README.md)."""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures"


def parity_dir() -> Path:
    """``FTCN_PARITY_DIR`` when set (the maintainers run other cases), else our copy of the shared fixtures."""
    return Path(os.environ.get("FTCN_PARITY_DIR") or FIXTURES / "reference_parity")


def load_json(path: Path) -> Any:
    with open(path) as handle:
        return json.load(handle)


def recipe_state_dict(keys: list[dict[str, Any]], weight_seed: int) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for entry in keys:
        name, shape = entry["name"], tuple(entry["shape"])
        rng = np.random.default_rng((zlib.crc32(name.encode()) + weight_seed) % 2**32)
        if entry["dtype"].startswith("int"):
            state[name] = torch.zeros(shape, dtype=getattr(torch, entry["dtype"]))
            continue
        if name.endswith("running_var"):
            values = rng.random(shape) + 0.5
        elif len(shape) >= 2:
            values = rng.standard_normal(shape) / math.sqrt(math.prod(shape[1:]))
        elif name.endswith("weight"):
            values = 1 + 0.1 * rng.standard_normal(shape)
        else:
            values = 0.1 * rng.standard_normal(shape)
        state[name] = torch.from_numpy(np.asarray(values, dtype=np.float32))
    return state


def recipe_input(case: dict[str, Any]) -> torch.Tensor:
    values = np.random.default_rng(case["input_seed"]).standard_normal(case["input_shape"]).astype(np.float32)
    checksum = case.get("input_checksum")
    if checksum:
        flat = values.astype(np.float64).ravel()
        np.testing.assert_allclose(flat.sum(), checksum["sum"], rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose((flat**2).sum(), checksum["sum_sq"], rtol=1e-9)
        np.testing.assert_allclose(flat[: len(checksum["first8"])], checksum["first8"], rtol=0, atol=0)
    return torch.from_numpy(values)


def tolerance_for(case: dict[str, Any], output: str) -> tuple[float, float]:
    """(atol, rtol) for one output: per-output tolerances when the case gives them, else the case-wide ones."""
    tolerance = case["tolerance"]
    chosen = tolerance.get(output, tolerance)
    return float(chosen["atol"]), float(chosen["rtol"])


def assert_close(got: Any, want: Any, atol: float, rtol: float, what: str) -> None:
    got_array = np.asarray(got, dtype=np.float64)
    want_array = np.asarray(want, dtype=np.float64)
    assert got_array.shape == want_array.shape, f"{what}: shape {got_array.shape} != {want_array.shape}"
    excess = np.abs(got_array - want_array) - (atol + rtol * np.abs(want_array))
    worst = int(np.argmax(excess)) if excess.size else 0
    assert excess.size == 0 or excess.max() <= 0, (
        f"{what}: {int((excess > 0).sum())} values out of tolerance; worst at flat index {worst}: "
        f"got {got_array.ravel()[worst]!r}, want {want_array.ravel()[worst]!r} (atol={atol}, rtol={rtol})"
    )


def compare_summary(tensor: torch.Tensor, expected: dict[str, Any], atol: float, rtol: float, what: str) -> None:
    """Check a stored output, whatever form the fixture keeps it in (full values or stats + samples)."""
    array = tensor.detach().double().numpy()
    if "shape" in expected:
        assert list(array.shape) == list(expected["shape"]), f"{what}: shape {list(array.shape)} != {expected['shape']}"
    checked = 0
    if "values" in expected and "rows" not in expected:
        assert_close(array.ravel(), np.ravel(expected["values"]), atol, rtol, f"{what}.values")
        checked += 1
    for key in ("mean", "std"):
        if key in expected:
            assert_close(getattr(array, key)(), expected[key], atol, rtol, f"{what}.{key}")
            checked += 1
    for key, value in expected.items():
        if key.startswith("first") and key[5:].isdigit():
            count = int(key[5:])
            assert_close(array.ravel()[:count], value, atol, rtol, f"{what}.{key}")
            checked += 1
    if "per_time_mean" in expected:  # [B, C, T, H, W]: mean over everything but time
        assert_close(array.mean(axis=(0, 1, 3, 4)), expected["per_time_mean"], atol, rtol, f"{what}.per_time_mean")
        checked += 1
    if "rows" in expected:  # selected prior rows of the first image; values are those rows, row-major
        first = array[0] if array.ndim == 3 else array
        selected = first[np.asarray(expected["rows"], dtype=np.int64)]
        assert_close(selected.ravel(), np.ravel(expected["values"]), atol, rtol, f"{what}.rows")
        checked += 1
    assert checked, f"{what}: the fixture holds no form of this output that the test knows ({sorted(expected)})"


def write_recipe_detector_files(folder: Path, weight_seed: int = 0) -> tuple[Path, Path]:
    """RetinaFace and landmark weights from the recipe, saved in the official file formats (RetinaFace saved from
    DataParallel, the landmark network under ``state_dict``); returns (detector, landmarks)."""
    detector = folder / "mobilenet0.25_Final.pth"
    torch.save({"module." + k: v for k, v in recipe_state_dict(
        load_json(parity_dir() / "retinaface_mnet025" / "keys.json"), weight_seed).items()}, detector)
    landmarks = folder / "mobilenet_224_model_best_gdconv_external.pth.tar"
    torch.save({"state_dict": recipe_state_dict(
        load_json(parity_dir() / "landmark_mobilenet_gdconv" / "keys.json"), weight_seed)}, landmarks)
    return detector, landmarks
