"""The number format the networks compute in, decided in one place.

bf16 halves the bytes every convolution moves and runs on the matrix units of recent GPUs and CPUs (AVX-512 BF16,
AMX); where a device has no native bf16 it is emulated and slower than fp32. So ``auto`` means bf16 autocast where
the device computes bf16 natively and fp32 elsewhere, ``fp32`` forces the official-equivalent arithmetic, and
``bf16`` insists (refused on a device without native support, where it would only be slower). Which runtime runs
the model is ``ftcn.runtime``'s choice: on a CPU that is ONNX Runtime in fp32, faster still and exact.

The accuracy guard: every clip probability within :data:`MAX_PROBABILITY_DELTA` of fp32. With bf16 everywhere a
model trained on the synthetic set moved by up to 0.014 (0.0049 with the stem and first stage in fp32), so the
network keeps its stem, first two stages and the temporal pool between them in fp32 under autocast
(``ResNetTemporal.fp32_steps``): 0.0016 on that model, 0.0004 on the parity recipe weights
(``tests/ftcn/test_precision.py``, ``test_training.py::test_synthetic_set_end_to_end``, ``bench/bench_model.py``).
On this CPU that leaves bf16 little faster than fp32 (2.25 against 2.45 s per full-size clip): the early,
full-resolution stages are most of the work.
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


def native_bf16(device: torch.device | str) -> bool:
    """Whether the device computes bf16 in hardware (CUDA: Ampere and later; CPU: AVX-512 BF16 or AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: Precision | str, device: torch.device | str) -> torch.dtype:
    """The dtype the networks compute in on this device for the asked precision."""
    try:
        precision = Precision(precision)
    except ValueError:
        raise BadOption(f"precision must be one of {', '.join(p.value for p in Precision)}, "
                        f"got {precision!r}") from None
    if precision is Precision.FP32:
        return torch.float32
    if native_bf16(device):
        return torch.bfloat16
    if precision is Precision.BF16:
        raise BadOption(f"bf16 was asked for, but this {torch.device(device).type.upper()} has no native bf16 "
                        "(it would be emulated, slower than fp32); use auto or fp32")
    return torch.float32


@contextlib.contextmanager
def compute_in(dtype: torch.dtype, device: torch.device | str) -> Iterator[None]:
    """Autocast to ``dtype`` on the device (nothing to do for fp32)."""
    device = torch.device(device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        yield


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: Precision.FP32.value, torch.bfloat16: Precision.BF16.value}[dtype]
