"""The model's ONNX graph, exported once per weights and checked against torch, and the cache it is kept in.

Every CPU runtime reads it (``ftcn.runtime``: ONNX Runtime and OpenVINO in fp32 and bf16) and int8 is quantized
from it (``ftcn.quantize``). The cache follows the XDG base directory convention (``$XDG_CACHE_HOME/ftcn/onnx``,
read when a graph is looked up), keyed by :func:`graph_key`, so a graph exported once serves every process of the
machine, and new weights or a changed forward never meet an old graph.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ftcn.checkpoints import weights_digest
from ftcn.models import FTCN
from ftcn.precision import MAX_PROBABILITY_DELTA


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ftcn" / "onnx"


EXPORT_REVISION = 2
"""Part of the cache key: raised when the network's forward changes how it computes (2: the stem in steps of
frames), so that graphs exported before are not reused."""


def graph_key(model: FTCN) -> str:
    """The exported graph's cache key: the export revision, the configuration and every weight."""
    context = f"revision {EXPORT_REVISION}\n".encode() + json.dumps(model.cfg.to_dict(), sort_keys=True).encode()
    return weights_digest(model, context)


def exported(model: FTCN) -> Path:
    """The model's ONNX graph (batch dimension free), exported and checked once, then taken from the cache."""
    path = cache_folder() / f"{model.cfg.name}-{graph_key(model)[:24]}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    example = example_batch(model, 2)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
    os.close(handle)
    try:
        with _quiet():
            torch.onnx.export(model, (example,), temporary, input_names=["clips"], output_names=["logits"],
                              dynamic_shapes={"clips": {0: torch.export.Dim("batch", min=1, max=1024)}},
                              external_data=False)
        _check_export(model, Path(temporary), example)
        os.replace(temporary, path)  # atomic: a concurrent process sees the whole file or none
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def example_batch(model: FTCN, batch: int) -> torch.Tensor:
    """The fixed random batch exports are traced with and runtimes are checked on."""
    cfg = model.cfg
    return torch.randn(batch, cfg.in_channels, cfg.clip_len, cfg.image_size, cfg.image_size,
                       generator=torch.Generator().manual_seed(0))


def _check_export(model: FTCN, path: Path, example: torch.Tensor) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    check_against_torch(model, lambda clips: torch.from_numpy(session.run(["logits"], {"clips": clips.numpy()})[0]),
                         example)


def check_against_torch(model: FTCN, logits: Callable[[torch.Tensor], torch.Tensor],
                         example: torch.Tensor) -> None:
    """A runtime's probabilities on a random batch against torch fp32's: within the guard, or an error."""
    with torch.inference_mode():
        expected = torch.sigmoid(model(example))
    got = torch.sigmoid(logits(example).float())
    delta = float((got - expected).abs().max())
    if delta > MAX_PROBABILITY_DELTA:
        raise RuntimeError(f"the compiled graph moves probabilities by {delta:.4f}; not used")


@contextlib.contextmanager
def _quiet():
    """The exporter's progress prints, warnings and log lines are not the user's business."""
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        exporter_log.setLevel(level)
