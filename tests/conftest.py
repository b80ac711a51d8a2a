"""Shared fixtures: torch kept to the machine's two cores, and one trained tiny model for the tests that serve one."""

from pathlib import Path

import pytest
import torch

# Two cores on CI; keep torch from oversubscribing them when pytest runs in one process.
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A tiny model trained on synthetic videos (about a minute), shared by the tests that serve one."""
    from ftcn.cli import main as ftcn_main

    root = tmp_path_factory.mktemp("trained")
    assert ftcn_main(["synth", str(root / "synth"), "--videos", "16", "--seed", "2", "--frames", "48"]) == 0
    assert ftcn_main(["preprocess", str(root / "synth"), str(root / "clips"), "--workers", "2"]) == 0
    assert ftcn_main(["split", str(root / "clips"), "--val", "0.25", "--seed", "0"]) == 0
    assert ftcn_main(["train", str(root / "clips"), "--out", str(root / "run"), "--epochs", "12", "--seed", "0"]) == 0
    return root / "run" / "best.pt"
