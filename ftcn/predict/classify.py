"""Clips through the model: aligned uint8 clips in, forgery probabilities out, batched through a runtime engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from ftcn.models import FTCN
from ftcn.runtime import Engine, Runtime, engine_for
from ftcn.timing import StageTimer


def to_model_input(clips: list[np.ndarray], model: FTCN, device: torch.device) -> torch.Tensor:
    """uint8 [N][T, H, W, 3] RGB -> normalised float [N, 3, T, H, W] (ImageNet mean/std in 0-255 space)."""
    batch = torch.from_numpy(np.stack(clips)).to(device).permute(0, 4, 1, 2, 3).float()
    mean = torch.tensor(model.cfg.mean, device=device).view(1, 3, 1, 1, 1)
    std = torch.tensor(model.cfg.std, device=device).view(1, 3, 1, 1, 1)
    return ((batch - mean) / std).contiguous(memory_format=torch.channels_last_3d)


def clip_probabilities(model: FTCN, engine: Engine, clips: list[np.ndarray], threads: int | None = None
                       ) -> np.ndarray:
    """Forgery probabilities of aligned uint8 clips [N][T, H, W, 3], one batch through ``engine`` (``threads``: see
    :class:`ftcn.runtime.Engine`)."""
    logits = engine(to_model_input(clips, model, next(model.parameters()).device), threads)
    return torch.sigmoid(logits.float()).cpu().numpy()


def classify_clips(
    model: FTCN, clips: Iterator[tuple[int, np.ndarray]], batch_size: int, count: int,
    on_batch: Callable[[int], None] | None = None,
    timer: StageTimer | None = None,
    engine: Engine | None = None,
) -> np.ndarray:
    """Probabilities for every planned clip, batched, through ``engine`` (default: torch fp32; see ftcn.runtime)."""
    engine = engine or engine_for(model, Runtime.TORCH, "fp32")
    timer = timer or StageTimer()
    probabilities = np.full(count, np.nan)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        indices = [i for i, _ in pending]
        with timer.measure("model"):
            probabilities[indices] = clip_probabilities(model, engine, [c for _, c in pending])
        if on_batch:
            on_batch(len(indices))
        pending.clear()

    for item in clips:
        pending.append(item)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    if np.isnan(probabilities).any():
        raise RuntimeError("some planned clips were never classified")
    return probabilities
