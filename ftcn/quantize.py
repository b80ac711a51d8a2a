"""int8: the model's exported graph quantized after training by NNCF, for OpenVINO's int8 kernels (AVX-512 VNNI, AMX).

Post-training quantization needs calibration clips: the ranges of every activation are measured on them. They are
the model's own training clips, aligned exactly as inference aligns them (preprocessing cuts them with the same
code), never test videos. The quantized graph is cached beside the exported fp32 one, keyed by the same digest of
the weights (``ftcn.export.graph_key``): a model is quantized once per machine, and a quantized graph made here
can be handed to another machine with the model (:func:`int8_files`).

Whether a model may run in int8 is not decided here: ``ftcn.precision_check`` judges it by the verdicts it gives.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ftcn.errors import BadOption
from ftcn.export import cache_folder, exported, graph_key
from ftcn.models import FTCN

log = logging.getLogger(__name__)

#: Calibration clips NNCF measures (its default subset is 300; a few dozen clips already cover a clip's activations
#: frame after frame, and the full model takes about 2 s per clip to run through).
CALIBRATION_CLIPS = 32


def int8_available() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def int8_files(model: FTCN) -> tuple[Path, Path]:
    """Where this model's quantized graph is cached (OpenVINO IR: the .xml graph and its .bin weights)."""
    stem = cache_folder() / f"{model.cfg.name}-{graph_key(model)[:24]}.int8"
    return stem.with_suffix(".xml"), stem.with_suffix(".bin")


def int8_graph(model: FTCN, calibration: Iterable[np.ndarray] | None = None) -> Path:
    """The quantized graph of ``model`` (its .xml). ``calibration``: normalised clips [3, T, H, W] (or batches of
    them), needed only when it is not cached."""
    xml, weights = int8_files(model)
    if xml.is_file() and weights.is_file():
        return xml
    if not int8_available():
        raise BadOption("int8 needs the nncf and openvino packages")
    if calibration is None:
        raise BadOption(f"{model.cfg.name} has no int8 graph on this machine; it is made when the model is checked "
                        "(ftcn check-precision) from its training clips")
    import nncf
    import openvino

    started = time.perf_counter()
    clips = [np.asarray(clip, np.float32)[None] if np.ndim(clip) == 4 else np.asarray(clip, np.float32)
             for clip in calibration]
    if not clips:
        raise BadOption("int8 calibration needs at least one clip")
    graph = openvino.Core().read_model(str(exported(model)))
    quantized = nncf.quantize(graph, nncf.Dataset(clips), subset_size=len(clips),
                              preset=nncf.QuantizationPreset.MIXED)
    xml.parent.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(dir=xml.parent, prefix=".int8-")
    try:
        partial = Path(folder) / xml.name
        openvino.save_model(quantized, str(partial), compress_to_fp16=False)
        os.replace(partial.with_suffix(".bin"), weights)  # weights first: an .xml is only there with its .bin
        os.replace(partial, xml)
    finally:
        for leftover in Path(folder).glob("*"):
            leftover.unlink()
        os.rmdir(folder)
    log.info("quantized %s to int8 on %d clips in %.1f s", model.cfg.name, len(clips), time.perf_counter() - started)
    return xml


def read_int8(model: FTCN) -> dict[str, bytes] | None:
    """The cached int8 graph's files, to carry with the checkpoint (None: not made on this machine)."""
    xml, weights = int8_files(model)
    if not (xml.is_file() and weights.is_file()):
        return None
    return {"xml": xml.read_bytes(), "bin": weights.read_bytes()}


def install_int8(model: FTCN, graph: dict[str, bytes]) -> None:
    """Put a checkpoint's int8 graph where :func:`int8_graph` finds it (once per machine and model)."""
    xml, weights = int8_files(model)
    if xml.is_file() and weights.is_file():
        return
    xml.parent.mkdir(parents=True, exist_ok=True)
    for target, data in ((weights, graph["bin"]), (xml, graph["xml"])):  # weights first, as int8_graph writes
        handle, partial = tempfile.mkstemp(dir=xml.parent, prefix=".int8-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, target)
