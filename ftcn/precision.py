"""The number formats the networks compute in, and which one a model runs in.

fp32 is the official-equivalent arithmetic and what every model runs in unless its own check passed a faster one.
bf16 halves the bytes every convolution moves and runs on the matrix units of recent GPUs and CPUs (AVX-512 BF16,
AMX); where a device has no native bf16 it is emulated and slower than fp32, so it is refused there. int8 runs a
graph quantized after training (``ftcn.quantize``) on OpenVINO's int8 kernels (AVX-512 VNNI, AMX).

Neither is judged by how far a clip probability moves (bf16 moved them by up to 0.028 on trained models against a
guard of :data:`MAX_PROBABILITY_DELTA`, which still guards the fp32 runtimes against torch): a user sees verdicts
and researchers see AUC, so ``ftcn.precision_check`` judges each precision per model by those, on the model's own
validation videos, and records the ones that pass in its checkpoint. ``auto`` is then the fastest of them
(:func:`fastest_passed`); a model with no record runs in fp32. ``bench/bench_precision.py`` prints the table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum

import torch

from ftcn.errors import BadOption

#: How far a clip probability may move from the fp32 path for bf16 to be the default.
MAX_PROBABILITY_DELTA = 0.005


class Precision(str, Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    INT8 = "int8"  # OpenVINO only: the graph quantized after training by NNCF (``ftcn.quantize``)


#: Fastest first, as the CPU runs them (``bench/bench_precision.py``): a model runs the first one its own check
#: passed (``ftcn.precision_check``).
FASTEST_FIRST = (Precision.INT8, Precision.BF16, Precision.FP32)


def fastest_passed(passed: list[str] | tuple[str, ...] | None) -> Precision:
    """The precision a model runs in when none is asked for: the fastest its check passed; fp32 for a model with
    no record (the official ``ftcn_tt.pth``, anything checked before the rule existed)."""
    recorded = set(passed or ())
    return next((p for p in FASTEST_FIRST if p.value in recorded), Precision.FP32)


def native_bf16(device: torch.device | str) -> bool:
    """Whether the device computes bf16 in hardware (CUDA: Ampere and later; CPU: AVX-512 BF16 or AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: Precision | str, device: torch.device | str) -> torch.dtype:
    """The dtype the networks compute in on this device for the asked precision (``auto``: fp32, see above)."""
    try:
        precision = Precision(precision)
    except ValueError:
        raise BadOption(f"precision must be one of {', '.join(p.value for p in Precision)}, "
                        f"got {precision!r}") from None
    if precision is Precision.INT8:
        raise BadOption("int8 runs in OpenVINO only (runtime auto or openvino), on a graph quantized for the model")
    if precision is not Precision.BF16:
        return torch.float32
    if not native_bf16(device):
        raise BadOption(f"bf16 was asked for, but this {torch.device(device).type.upper()} has no native bf16 "
                        "(it would be emulated, slower than fp32); use auto or fp32")
    return torch.bfloat16


@contextlib.contextmanager
def compute_in(dtype: torch.dtype, device: torch.device | str) -> Iterator[None]:
    """Autocast to ``dtype`` on the device (nothing to do for fp32)."""
    device = torch.device(device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        yield


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: Precision.FP32.value, torch.bfloat16: Precision.BF16.value}[dtype]
