"""The number format the networks compute in, decided in one place.

bf16 halves the bytes every convolution moves and runs on the matrix units of recent GPUs and CPUs (AVX-512 BF16,
AMX); where a device has no native bf16 it is emulated and slower than fp32. The accuracy guard for making it a
default: every clip probability within :data:`MAX_PROBABILITY_DELTA` of fp32.

Measured on this project's 2-core CPU (``bench/bench_guard.py``: 12 trained tiny and small models, every clip of
their datasets): with bf16 in every layer clip probabilities moved by up to 0.051 (8 models over the guard); with
the stem, the first two stages and the temporal pool between them kept in fp32 under autocast
(``ResNetTemporal.fp32_steps``) by up to 0.011 (2 models over), and by 0.0004 on the parity recipe weights;
OpenVINO's own bf16 by up to 0.028. It does not hold the guard, so ``auto`` is fp32 on every device; ``bf16`` is an
explicit choice (refused on a device without native bf16, where it would only be slower), and
``bench/bench_model.py`` / ``bench/bench_gpu.py`` print its speed and its probability change side by side. On a CPU
the fast path is OpenVINO in fp32 anyway (``ftcn.runtime``): 4.3-4.5x torch fp32, exact.
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
    """The dtype the networks compute in on this device for the asked precision (``auto``: fp32, see above)."""
    try:
        precision = Precision(precision)
    except ValueError:
        raise BadOption(f"precision must be one of {', '.join(p.value for p in Precision)}, "
                        f"got {precision!r}") from None
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
