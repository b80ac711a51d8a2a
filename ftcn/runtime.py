"""Where the model's forward pass runs, chosen in one place: torch, or ONNX Runtime on a CPU.

Measured side by side on the 2-core development CPU (``bench/bench_model.py``, full model, one 32x224x224 clip):
torch fp32 3.8-4.4 s, torch fp32 channels-last 2.5-2.7 s, torch bf16 autocast 1.6-1.7 s (2.25-2.46 s with the
early stages in fp32), ``torch.compile`` 1.4-1.5 s, OpenVINO 1.9-2.0 s, and ONNX Runtime fp32 1.05-1.16 s,
with probabilities equal to torch fp32. So on a CPU the default is ONNX Runtime in fp32: fastest and exact. On a
GPU the default is torch in fp32; bf16 autocast is an explicit choice (``ftcn.precision`` says why).

The ONNX graph is exported from the loaded network once (24 s for the full model, its check included) and kept in
the user's cache folder under a digest of the weights and configuration; before a new export is used, its
probabilities on a random batch are checked against torch fp32 (``MAX_PROBABILITY_DELTA``), and a graph that
fails is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch

from ftcn.errors import BadOption
from ftcn.models import FTCN
from ftcn.precision import MAX_PROBABILITY_DELTA, compute_in, dtype_name, resolve_precision

log = logging.getLogger(__name__)


class Runtime(str, Enum):
    AUTO = "auto"
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"


@dataclass(frozen=True)
class Engine:
    """Normalised clips [B, 3, T, H, W] -> logits [B] (float32, on the CPU or the model's device).

    ``threads`` asks for fewer CPU threads than the engine's own (None: all of them) while another part of the
    pipeline works beside it: on the 2-core development CPU a 2-thread forward pass that shares its cores with
    face finding took 1.98 s per clip and left face finding 67 % of a core, a 1-thread pass 2.02 s and left it
    93 % (``ftcn.predict.stream`` asks for this). ONNX Runtime keeps a session per thread count, sharing one
    memory arena; torch ignores it."""

    runtime: str
    precision: str
    run: Callable[[torch.Tensor, int | None], torch.Tensor]

    def __call__(self, clips: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        return self.run(clips, threads)

    def describe(self) -> dict[str, str]:
        return {"runtime": self.runtime, "precision": self.precision}


def threads_beside() -> int:
    """The model's threads while face finding works beside it: one core left to it. The ONNX Runtime engine makes
    a session for this count upfront."""
    return max(1, torch.get_num_threads() - 1)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


_engines: "weakref.WeakKeyDictionary[FTCN, dict[tuple[str, str], Engine]]" = weakref.WeakKeyDictionary()


def engine_for(model: FTCN, runtime: Runtime | str = Runtime.AUTO, precision: str = "auto") -> Engine:
    """The engine that runs this model, built once per model, runtime and precision in a process."""
    try:
        runtime = Runtime(runtime)
    except ValueError:
        raise BadOption(f"runtime must be one of {', '.join(r.value for r in Runtime)}, got {runtime!r}") from None
    device = next(model.parameters()).device
    asked = runtime
    if runtime is Runtime.AUTO:
        cpu_fp32 = device.type == "cpu" and precision != "bf16"
        runtime = Runtime.ONNXRUNTIME if cpu_fp32 and onnxruntime_available() else Runtime.TORCH
    if runtime is Runtime.ONNXRUNTIME:
        if device.type != "cpu":
            raise BadOption("the onnxruntime runtime runs on the CPU; the model is on " + device.type)
        if precision == "bf16":
            raise BadOption("the onnxruntime runtime computes in fp32; use precision auto or fp32")
        if not onnxruntime_available():
            raise BadOption("the onnxruntime runtime needs the onnxruntime and onnxscript packages")
    key = (runtime.value, precision)
    cached = _engines.setdefault(model, {})
    if key not in cached:
        cached[key] = _onnx_engine(model, fallback=asked is Runtime.AUTO, precision=precision) \
            if runtime is Runtime.ONNXRUNTIME else _torch_engine(model, precision)
    return cached[key]


def _torch_engine(model: FTCN, precision: str) -> Engine:
    device = next(model.parameters()).device
    dtype = resolve_precision(precision, device)

    def run(clips: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        with torch.inference_mode(), compute_in(dtype, device):
            return model(clips.contiguous(memory_format=torch.channels_last_3d)).float()

    return Engine(Runtime.TORCH.value, dtype_name(dtype), run)


def _onnx_engine(model: FTCN, fallback: bool, precision: str) -> Engine:
    """ONNX Runtime on the CPU; when it was only the default (``fallback``), an export that fails or does not pass
    its check leaves the model to torch, with a warning in the log."""
    import onnxruntime

    try:
        path = _exported(model)
    except Exception as error:  # the exporter raises many types; the fallback is the same for all of them
        if not fallback:
            raise
        log.warning("ONNX export of %s failed (%s); running it with torch", model.cfg.name, error)
        return _torch_engine(model, precision)
    _share_one_arena()
    cores = torch.get_num_threads()
    sessions: dict[int, onnxruntime.InferenceSession] = {}

    def session(threads: int) -> onnxruntime.InferenceSession:
        if threads not in sessions:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.log_severity_level = 3
            options.add_session_config_entry("session.use_env_allocators", "1")
            sessions[threads] = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return sessions[threads]

    for threads in {cores, threads_beside()}:  # both made now: a worker makes them once, not inside a job
        session(threads)

    def run(clips: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        array = clips.detach().cpu().contiguous().numpy()
        chosen = session(cores if threads is None else max(1, min(cores, threads)))
        return torch.from_numpy(chosen.run(["logits"], {"clips": array})[0]).float()

    return Engine(Runtime.ONNXRUNTIME.value, "fp32", run)


_arena_shared = False


def _share_one_arena() -> None:
    """One CPU memory arena for every ONNX Runtime session of the process (a session per thread count would
    otherwise hold its own: 1.41 GB instead of 1.09 GB for the full model's two sessions, with the stepped stem)."""
    global _arena_shared
    if _arena_shared:
        return
    import onnxruntime

    memory = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                       onnxruntime.OrtMemType.DEFAULT)
    onnxruntime.create_and_register_allocator(memory, onnxruntime.OrtArenaCfg(0, -1, -1, -1))
    _arena_shared = True


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ftcn" / "onnx"


EXPORT_REVISION = 2
"""Part of the cache key: raised when the network's forward changes how it computes (2: the stem in steps of
frames), so that graphs exported before are not reused."""


def weights_digest(model: FTCN) -> str:
    """Digest of the export revision, the configuration and every weight: the exported graph's cache key."""
    digest = hashlib.sha256(f"revision {EXPORT_REVISION}\n".encode())
    digest.update(json.dumps(model.cfg.to_dict(), sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _exported(model: FTCN) -> Path:
    """The model's ONNX graph (batch dimension free), exported and checked once, then taken from the cache."""
    path = cache_folder() / f"{model.cfg.name}-{weights_digest(model)[:24]}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    example = torch.randn(2, cfg.in_channels, cfg.clip_len, cfg.image_size, cfg.image_size,
                          generator=torch.Generator().manual_seed(0))
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


def _check_export(model: FTCN, path: Path, example: torch.Tensor) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = torch.sigmoid(model(example))
    got = torch.sigmoid(torch.from_numpy(session.run(["logits"], {"clips": example.numpy()})[0]))
    delta = float((got - expected).abs().max())
    if delta > MAX_PROBABILITY_DELTA:
        raise RuntimeError(f"the exported ONNX graph moves probabilities by {delta:.4f}; not used")


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
