"""Reading and writing weights: our own checkpoint format and the official FTCN / RetinaFace / landmark files.

A checkpoint is untrusted input (users upload them to the service), so every file is read with
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary pickled objects. Foreign
layouts are adapted by each model module's ``checkpoint_filter_fn``; loading is strict and a mismatch names the keys.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ftcn.errors import CheckpointError
from ftcn.models import FTCN, FTCNConfig, build_model, ftcn_tt, full_config, landmarks, retinaface

CHECKPOINT_FORMAT = "ftcn-checkpoint"
CHECKPOINT_VERSION = 1
DEFAULT_THRESHOLD = 0.5
OFFICIAL_FTCN_PREFIX = "resnet."
#: The decision threshold the official video script uses with ftcn_tt.pth (its writer's ``opt_thres``): the
#: published model gives real faces probabilities near zero, so 0.5 would call almost every forgery real.
OFFICIAL_FTCN_THRESHOLD = 0.002584857167676091


@dataclass
class Checkpoint:
    """An FTCN+TT checkpoint, whatever file format it came from."""

    config: FTCNConfig
    state_dict: dict[str, torch.Tensor]
    threshold: float = DEFAULT_THRESHOLD
    metadata: dict[str, Any] = field(default_factory=dict)
    source_format: str = CHECKPOINT_FORMAT  # or "official"
    #: Scores from ``low`` to ``high`` are too near the threshold to call (``ftcn.predict.confidence``), set on
    #: validation videos by training (``ftcn.training.metrics.choose_band``); None: the file has none (the
    #: official one, ours from before bands).
    band: tuple[float, float] | None = None
    #: The model's int8 graph (OpenVINO IR: ``{"xml": ..., "bin": ...}``) when its precision check passed int8
    #: (``ftcn.precision_check``): carried with the weights so any machine runs it without calibration clips.
    int8_graph: dict[str, bytes] | None = None


def _torch_load(path: str | Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which is exactly what untrusted input must not get.
        raise CheckpointError(
            f"{what} {path} is not a PyTorch checkpoint, or holds objects other than tensors and plain "
            f"containers (refusing to unpickle it)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises anything on garbage (KeyError, EOFError, ...)
        raise CheckpointError(
            f"{what} {path} is truncated or not a PyTorch file ({type(exc).__name__}: {exc})"
        ) from None


def _tensor_dict(candidate: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(candidate, dict) and candidate and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in candidate.items()
    ):
        return candidate
    return None


def _find_state_dict(obj: Any, what: str, path: str | Path) -> dict[str, torch.Tensor]:
    """A bare state dict, or one under the usual ``state_dict`` / ``model`` keys of training scripts."""
    bare = _tensor_dict(obj)
    if bare is not None:
        return bare
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            nested = _tensor_dict(obj.get(key))
            if nested is not None:
                return nested
    raise CheckpointError(f"{what} {path} holds no state dict (found {type(obj).__name__})")


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k} {list(state_dict[k].shape)} != {list(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mis_shaped:
        parts = []
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped)):
            if names:
                shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
                parts.append(f"{len(names)} {label}: {shown}")
        raise CheckpointError(f"{what} does not match the model: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def weights_digest(model: nn.Module, context: bytes = b"") -> str:
    """SHA-256 of ``context`` then every parameter and buffer in state_dict order: equal digests, the same model
    (DDP's replicas are compared by it; with the configuration as context it keys the exported graphs' cache)."""
    digest = hashlib.sha256(context)
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _parse_ours(obj: dict[str, Any], path: str | Path) -> Checkpoint:
    version = obj.get("version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {version!r}; this build reads {CHECKPOINT_VERSION}")
    try:
        config = FTCNConfig.from_dict(obj["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {exc}") from None
    state_dict = _tensor_dict(obj.get("state_dict"))
    if state_dict is None:
        raise CheckpointError(f"checkpoint {path} has no state_dict of tensors")
    threshold = obj.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < 1.0 or math.isnan(threshold):
        raise CheckpointError(f"checkpoint {path} has an invalid decision threshold {threshold!r}")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {path} has metadata of type {type(metadata).__name__}, not a mapping")
    band = obj.get("inconclusive_band")
    if band is not None:
        if (not isinstance(band, (list, tuple)) or len(band) != 2
                or not all(isinstance(v, (int, float)) and 0.0 < float(v) < 1.0 for v in band)
                or not float(band[0]) <= float(threshold) <= float(band[1])):
            raise CheckpointError(f"checkpoint {path} has an invalid inconclusive band {band!r} (two scores in (0, 1) "
                                  f"around the threshold {threshold})")
        band = (float(band[0]), float(band[1]))
    return Checkpoint(config, state_dict, float(threshold), metadata, CHECKPOINT_FORMAT, band,
                      _int8_graph(obj.get("int8_graph"), path))


def _int8_graph(stored: Any, path: str | Path) -> dict[str, bytes] | None:
    if stored is None:
        return None
    if not isinstance(stored, dict) or set(stored) != {"xml", "bin"} or not all(
            isinstance(part, torch.Tensor) and part.dtype == torch.uint8 for part in stored.values()):
        raise CheckpointError(f"checkpoint {path} has an int8 graph that is not its two byte tensors")
    return {name: part.numpy().tobytes() for name, part in stored.items()}


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read an FTCN+TT checkpoint: ours (config + threshold + metadata) or the official ``ftcn_tt.pth``."""
    obj = _torch_load(path, "checkpoint")
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        return _parse_ours(obj, path)
    state_dict = ftcn_tt.checkpoint_filter_fn(_find_state_dict(obj, "checkpoint", path))
    if not any(key.startswith(OFFICIAL_FTCN_PREFIX) for key in state_dict):
        sample = ", ".join(list(state_dict)[:3])
        raise CheckpointError(
            f"checkpoint {path} is neither an FTCN checkpoint nor the official ftcn_tt.pth (keys start: {sample})"
        )
    return Checkpoint(full_config(), state_dict, OFFICIAL_FTCN_THRESHOLD, {"source": "official ftcn_tt.pth"},
                      "official")


def load_training_state(path: str | Path) -> tuple[Checkpoint, dict[str, Any]]:
    """A resumable checkpoint of ours and its training state (optimizer, epoch, history)."""
    obj = _torch_load(path, "checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT or "training_state" not in obj:
        raise CheckpointError(f"checkpoint {path} holds no training state to resume from")
    return _parse_ours(obj, path), obj["training_state"]


def model_from_checkpoint(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> FTCN:
    """Build the network the checkpoint describes and fill it strictly; eval mode, channels-last-3d.

    Channels-last-3d memory format measured 1.4-1.9x faster on CPU (bench/bench_model.py) with identical outputs
    up to float rounding; inputs are converted to match in :func:`ftcn.predict.classify.to_model_input`.
    """
    model = build_model(checkpoint.config)
    load_strict(model, checkpoint.state_dict, f"checkpoint ({checkpoint.config.name})")
    return model.to(device, memory_format=torch.channels_last_3d).eval()


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[FTCN, Checkpoint]:
    checkpoint = load_checkpoint(path)
    return model_from_checkpoint(checkpoint, device), checkpoint


def save_checkpoint(
    path: str | Path, model: FTCN, threshold: float = DEFAULT_THRESHOLD, metadata: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None, band: tuple[float, float] | None = None,
    int8_graph: dict[str, bytes] | None = None,
) -> Path:
    """Write our format atomically (temporary file + rename), so a crash never leaves a half checkpoint.

    ``training_state`` (optimizer state, epoch, history) makes the file resumable; readers that only predict
    ignore it. ``band``: the inconclusive band around the threshold (``Checkpoint.band``); ``int8_graph``: see
    ``Checkpoint.int8_graph``.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "threshold": float(threshold),
        "metadata": dict(metadata or {}),
    }
    if band is not None:
        if not 0.0 < band[0] <= threshold <= band[1] < 1.0:
            raise ValueError(f"the inconclusive band {band} must lie in (0, 1) around the threshold {threshold}")
        payload["inconclusive_band"] = [float(band[0]), float(band[1])]
    if training_state is not None:
        payload["training_state"] = training_state
    if int8_graph is not None:
        payload["int8_graph"] = {name: torch.frombuffer(bytearray(part), dtype=torch.uint8)
                                 for name, part in int8_graph.items()}
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def _load_face_network(
    path: str | Path, what: str, factory: Callable[[], nn.Module], filter_fn: Callable, device: str | torch.device
) -> nn.Module:
    state_dict = filter_fn(_find_state_dict(_torch_load(path, what), what, path))
    model = factory()
    load_strict(model, state_dict, f"{what} {path}")
    return model.to(device).eval()


def load_retinaface(path: str | Path, device: str | torch.device = "cpu") -> retinaface.RetinaFace:
    """The official ``mobilenet0.25_Final.pth`` (maybe with ``module.``, maybe under ``state_dict``)."""
    return _load_face_network(path, "RetinaFace weights", retinaface.RetinaFace, retinaface.checkpoint_filter_fn,
                              device)


def load_landmark_net(path: str | Path, device: str | torch.device = "cpu") -> landmarks.MobileNetGDConv:
    """The official MobileNet_GDConv ``.pth.tar`` (its state dict sits under ``state_dict``)."""
    return _load_face_network(path, "landmark weights", landmarks.MobileNetGDConv, landmarks.checkpoint_filter_fn,
                              device)
