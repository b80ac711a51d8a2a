"""Where the model's forward pass runs, chosen in one place: torch, ONNX Runtime or OpenVINO on a CPU.

Measured side by side on the 2-core development CPU (``bench/bench_model.py``, full model, one 32x224x224 clip):
torch fp32 2.9-4.4 s, torch fp32 channels-last 2.5-2.8 s, torch bf16 autocast 1.6-1.9 s, ``torch.compile``
1.4-1.5 s, ONNX Runtime fp32 0.91-1.16 s and OpenVINO fp32 0.74-0.91 s, the last two with probabilities equal to
torch fp32. So on a CPU the default is OpenVINO in fp32 (ONNX Runtime where OpenVINO is not installed): fastest
and exact. OpenVINO's own default on a CPU with bf16 is bf16 (0.37-0.46 s), which moved trained models' clip
probabilities by up to 0.028 (12 trained tiny and small models, ~3,000 clips; the guard is 0.005), so it is
told to compute in fp32. On a GPU the default is torch in fp32; bf16 autocast is an explicit choice
(``ftcn.precision`` says why).

Both CPU runtimes read one ONNX graph, exported from the loaded network once (24 s for the full model, its check
included) and kept in the user's cache folder under a digest of the weights and configuration; before a new
export is used, its probabilities on a random batch are checked against torch fp32 (``MAX_PROBABILITY_DELTA``),
and a graph that fails is not used. OpenVINO's compiled graph is checked the same way once per graph and OpenVINO
version.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from ftcn.errors import BadOption
from ftcn.export import check_against_torch, example_batch, exported
from ftcn.models import FTCN
from ftcn.precision import compute_in, dtype_name, native_bf16, resolve_precision

log = logging.getLogger(__name__)


class Runtime(str, Enum):
    AUTO = "auto"
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"

    @property
    def on_cpu_only(self) -> bool:
        return self in (Runtime.ONNXRUNTIME, Runtime.OPENVINO)


@dataclass(frozen=True)
class Engine:
    """Normalised clips [B, 3, T, H, W] -> logits [B] (float32, on the CPU or the model's device).

    ``threads`` asks for fewer CPU threads than the engine's own (None: all of them) while another part of the
    pipeline works beside it: on the 2-core development CPU a 2-thread forward pass that shares its cores with
    face finding took 1.98 s per clip and left face finding 67 % of a core, a 1-thread pass 2.02 s and left it
    93 % (``ftcn.predict.stream`` asks for this). OpenVINO keeps a compiled graph per thread count, ONNX Runtime
    a session per thread count sharing one memory arena; torch ignores it."""

    runtime: str
    precision: str
    run: Callable[[torch.Tensor, int | None], torch.Tensor]

    def __call__(self, clips: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        return self.run(clips, threads)

    def describe(self) -> dict[str, str]:
        return {"runtime": self.runtime, "precision": self.precision}


def threads_beside() -> int:
    """The model's threads while face finding works beside it: one core left to it. The CPU engines prepare a
    session or compiled graph for this count upfront."""
    return max(1, torch.get_num_threads() - 1)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_available() -> bool:
    """OpenVINO runs the exported graph, so the exporter (and ONNX Runtime, which checks each export) is needed too."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return onnxruntime_available()


_AVAILABLE = {Runtime.ONNXRUNTIME: (onnxruntime_available, "the onnxruntime and onnxscript packages"),
              Runtime.OPENVINO: (openvino_available, "the openvino, onnxruntime and onnxscript packages")}


def available(runtime: Runtime | str) -> bool:
    """Whether this runtime's packages are installed (torch always is)."""
    runtime = Runtime(runtime)
    return runtime not in _AVAILABLE or _AVAILABLE[runtime][0]()


#: The precisions each CPU runtime computes in ("auto" is fp32 there); torch takes fp32 and bf16 (ftcn.precision).
RUNS_IN = {Runtime.ONNXRUNTIME: ("auto", "fp32"), Runtime.OPENVINO: ("auto", "fp32", "bf16", "int8")}

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
        on_cpu = device.type == "cpu"
        order = (Runtime.OPENVINO,) if precision in ("bf16", "int8") else (Runtime.OPENVINO, Runtime.ONNXRUNTIME)
        runtime = next((r for r in order if on_cpu and available(r)), Runtime.TORCH)
    if runtime.on_cpu_only:
        if device.type != "cpu":
            raise BadOption(f"the {runtime.value} runtime runs on the CPU; the model is on {device.type}")
        if precision not in RUNS_IN[runtime]:
            computes = ", ".join(p for p in RUNS_IN[runtime] if p != "auto")
            raise BadOption(f"the {runtime.value} runtime computes in {computes}, not {precision}")
        if not available(runtime):
            raise BadOption(f"the {runtime.value} runtime needs {_AVAILABLE[runtime][1]}")
    key = (runtime.value, precision)
    cached = _engines.setdefault(model, {})
    if key not in cached:
        make = {Runtime.ONNXRUNTIME: _onnx_engine, Runtime.OPENVINO: _openvino_engine}.get(runtime)
        cached[key] = make(model, fallback=asked is Runtime.AUTO, precision=precision) if make \
            else _torch_engine(model, precision)
    return cached[key]


def _torch_engine(model: FTCN, precision: str) -> Engine:
    device = next(model.parameters()).device
    dtype = resolve_precision(precision, device)

    def run(clips: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        with torch.inference_mode(), compute_in(dtype, device):
            return model(clips.contiguous(memory_format=torch.channels_last_3d)).float()

    return Engine(Runtime.TORCH.value, dtype_name(dtype), run)


def _graph_or_fallback(model: FTCN, fallback: bool, precision: str) -> Path | Engine:
    """The model's checked ONNX graph; when the CPU runtime was only the default (``fallback``), an export that
    fails or does not pass its check leaves the model to torch, with a warning in the log."""
    try:
        return exported(model)
    except Exception as error:  # the exporter raises many types; the fallback is the same for all of them
        if not fallback:
            raise
        log.warning("ONNX export of %s failed (%s); running it with torch", model.cfg.name, error)
        return _torch_engine(model, precision)


def _onnx_engine(model: FTCN, fallback: bool, precision: str) -> Engine:
    """ONNX Runtime on the CPU (see :func:`_graph_or_fallback` for a failed export)."""
    import onnxruntime

    path = _graph_or_fallback(model, fallback, precision)
    if isinstance(path, Engine):
        return path
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


def _openvino_engine(model: FTCN, fallback: bool, precision: str) -> Engine:
    """OpenVINO on the CPU, told to compute in fp32 (its bf16 fails the guard on trained models; module doc), one
    compiled graph per thread count like ONNX Runtime's sessions. Threads are not pinned to cores: face finding
    runs beside the model. A compiled graph runs one request at a time, hence a lock per graph.

    Batches of one clip (the CPU default for the full model) get a graph compiled for that shape: OpenVINO plans
    a static graph's memory, and for the full model one such graph held 390 MB after its first clip against
    670 MB for the graph with a free batch dimension, which serves every other batch size."""
    import threading

    import openvino

    if precision == "int8":
        from ftcn.quantize import int8_graph

        path = int8_graph(model)  # made and checked when the model was (ftcn.precision_check)
    else:
        path = _graph_or_fallback(model, fallback, precision)
        if isinstance(path, Engine):
            return path
    if precision == "bf16" and not native_bf16("cpu"):
        raise BadOption("bf16 was asked for, but this CPU has no native bf16 (it would be emulated, slower than "
                        "fp32); use auto or fp32")
    hint = "bf16" if precision == "bf16" else "f32"  # int8 layers run in int8 whatever the hint; the rest in fp32
    core = openvino.Core()
    cores = torch.get_num_threads()
    compiled: dict[tuple[int, bool], tuple[Any, threading.Lock]] = {}
    making = threading.Lock()

    def compiled_for(threads: int, batch: int) -> tuple[Any, threading.Lock]:
        key = (threads, batch == 1)
        with making:
            if key not in compiled:
                graph = core.read_model(str(path))
                if batch == 1:
                    graph.reshape([1, *graph.inputs[0].get_partial_shape()[1:].to_shape()])
                config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads,
                          "ENABLE_CPU_PINNING": False, "PERFORMANCE_HINT": "LATENCY"}
                compiled[key] = (core.compile_model(graph, "CPU", config), threading.Lock())
            return compiled[key]

    def run(clips: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        array = clips.detach().cpu().contiguous().numpy()
        graph, lock = compiled_for(cores if threads is None else max(1, min(cores, threads)), len(array))
        with lock:
            logits = graph(array)[0]
        return torch.from_numpy(logits.copy()).float()

    for threads in {cores, threads_beside()}:  # made now: a worker makes them once, not inside a job
        compiled_for(threads, 1)
    if precision in ("bf16", "int8"):  # judged by the verdicts they give (ftcn.precision_check), not by logits
        return Engine(Runtime.OPENVINO.value, precision, run)
    version = hashlib.sha256(openvino.get_version().encode()).hexdigest()[:12]  # "2026.4.1-22982-.../2026/4"
    marker = path.with_name(f"{path.name}.openvino-{version}.checked")
    if not marker.is_file():
        try:
            # on the batch-1 graph that jobs use; the free-batch graph is covered by tests/ftcn/test_runtime.py
            check_against_torch(model, run, example_batch(model, 1))
        except RuntimeError as error:
            if not fallback:
                raise
            log.warning("OpenVINO's compiled %s failed its check (%s); running it with ONNX Runtime",
                        model.cfg.name, error)
            return _onnx_engine(model, fallback, precision)
        marker.touch()
    return Engine(Runtime.OPENVINO.value, "fp32", run)


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
