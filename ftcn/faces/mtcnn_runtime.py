"""MTCNN's three networks compiled by OpenVINO on the CPU, where it is installed and agrees with torch.

Why: P-Net runs over the whole image pyramid on every scan, and torch's small convolutions spend most of their time
outside arithmetic. Over a 720p pyramid from 40 px (9 levels), OpenVINO in fp32 took 80 ms where torch took 337 ms
(both sharing the 2-core development machine with another job), with face probabilities equal to 3e-7. The
networks stay fp32 (``INFERENCE_PRECISION_HINT``): OpenVINO's default on a bf16 CPU moved probabilities by 0.02.

P-Net is compiled for any image size, R-Net and O-Net for any batch of crops. Converting the three from torch
takes about 5 s, so the converted graphs are kept in the cache folder (``ftcn.export.cache_folder``), keyed by the
weights and the OpenVINO version, written atomically; a process then reads and compiles them (about 1 s). Each
network is checked against torch on fixed inputs when it is compiled; one that disagrees (or an OpenVINO that is
missing or fails) leaves MTCNN on torch, with a warning. GPU devices stay on torch.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ftcn.checkpoints import weights_digest
from ftcn.export import cache_folder
from ftcn.models.mtcnn import MTCNN, load_mtcnn

log = logging.getLogger(__name__)

#: The largest difference from torch a compiled network may show on the check's inputs (probabilities, offsets
#: and points, all of order 1).
CHECK_ATOL = 1e-4
#: Input shapes: -1 is free (P-Net: image height and width; R-Net and O-Net: the batch of crops).
SHAPES = {"pnet": [1, 3, -1, -1], "rnet": [-1, 3, 24, 24], "onet": [-1, 3, 48, 48]}
CHECK_INPUTS = {"pnet": (1, 3, 61, 83), "rnet": (5, 3, 24, 24), "onet": (5, 3, 48, 48)}


class CompiledNet:
    """One compiled network, called like the torch module (a float tensor in, a tuple of tensors out). A compiled
    model runs one request at a time, hence the lock."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with self._lock:
            outputs = self._compiled(x.detach().contiguous().numpy())
        return tuple(torch.from_numpy(np.array(outputs[i])) for i in range(len(outputs)))


@dataclass(frozen=True)
class MtcnnNets:
    """The three networks as the cascade (``ftcn.faces.mtcnn``) calls them, and what runs them."""

    pnet: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    rnet: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    onet: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    device: torch.device
    runtime: str


def _graph(model: MTCNN, name: str) -> Path:
    """The network's OpenVINO graph (.xml beside its .bin), converted once per weights and OpenVINO version."""
    import openvino

    module = getattr(model, name)
    key = weights_digest(module, f"mtcnn {name} openvino {openvino.get_version()}".encode())[:24]
    path = cache_folder() / f"mtcnn-{name}-{key}.xml"
    if path.is_file() and path.with_suffix(".bin").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = SHAPES[name]
    example = torch.zeros([24 if size == -1 else size for size in shape])
    graph = openvino.convert_model(module, example_input=example, input=[openvino.PartialShape(shape)])
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        partial = Path(folder) / path.name
        openvino.save_model(graph, str(partial), compress_to_fp16=False)
        os.replace(partial.with_suffix(".bin"), path.with_suffix(".bin"))  # weights first: an .xml is whole
        os.replace(partial, path)
    return path


def _compile(model: MTCNN, name: str, threads: int) -> CompiledNet:
    import openvino

    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False,
              "PERFORMANCE_HINT": "LATENCY"}
    return CompiledNet(openvino.Core().compile_model(str(_graph(model, name)), "CPU", config))


def _agrees(module: torch.nn.Module, compiled: CompiledNet, shape: tuple[int, ...]) -> float:
    """The largest difference between torch and the compiled network on a fixed input."""
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(0)) - 0.5) * 2
    with torch.inference_mode():
        expected = module(x)
    return max(float((a - b).abs().max()) for a, b in zip(expected, compiled(x)))


def runnable(model: MTCNN, threads: int | None = None) -> MTCNN | MtcnnNets:
    """``model`` compiled by OpenVINO when it is on the CPU and each network agrees with torch; else ``model``."""
    if model.device.type != "cpu":
        return model
    threads = threads or torch.get_num_threads()
    try:
        nets = {name: _compile(model, name, threads) for name in SHAPES}
        worst = {name: _agrees(getattr(model, name), net, CHECK_INPUTS[name]) for name, net in nets.items()}
    except ImportError:
        return model
    except Exception as error:  # noqa: BLE001 - a runtime that fails to compile leaves torch, which works
        log.warning("OpenVINO could not compile MTCNN (%s); it runs on torch", error)
        return model
    if max(worst.values()) > CHECK_ATOL:
        log.warning("OpenVINO's MTCNN differs from torch's by %s; it runs on torch", worst)
        return model
    return MtcnnNets(nets["pnet"], nets["rnet"], nets["onet"], model.device, "openvino")


@functools.lru_cache(maxsize=None)
def shared_mtcnn(device: str = "cpu") -> MTCNN | MtcnnNets:
    """The networks every MTCNN backend of this process runs on ``device``: loaded (the pinned weights) and
    compiled once. Both kinds take concurrent calls (torch in inference mode; a compiled network behind its lock)."""
    return runnable(load_mtcnn(device))
