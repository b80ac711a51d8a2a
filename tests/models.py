"""Untrained models for pipeline tests: what they say means nothing, how the pipeline handles it is the point."""

from __future__ import annotations

import torch

from ftcn.checkpoints import Checkpoint, model_from_checkpoint
from ftcn.models import FTCN, build_model, config_for_size


def untrained(size: str = "tiny", seed: int = 0) -> tuple[FTCN, Checkpoint]:
    """A model of ``size`` with seeded random weights, and its checkpoint (threshold 0.5, no band)."""
    torch.manual_seed(seed)
    network = build_model(config_for_size(size))
    checkpoint = Checkpoint(network.cfg, network.state_dict(), metadata={"purpose": "test, untrained"})
    return model_from_checkpoint(checkpoint), checkpoint
