"""Training curves and ROC plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def write_training_plots(history: list[dict[str, Any]], out: Path) -> None:
    """loss.png (train and validation loss) and auc.png (validation AUC, clip and video level) per epoch."""
    plt = _pyplot()
    epochs = [e["epoch"] for e in history]
    for name, series in (
        ("loss", {"train": [e["train_loss"] for e in history], "validation": [e["val_loss"] for e in history]}),
        ("auc", {level: [np.nan if e["val"][level]["auc"] is None else e["val"][level]["auc"] for e in history]
                 for level in ("clip", "video")}),
    ):
        figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
        try:
            for label, values in series.items():
                axes.plot(epochs, values, marker="o", label=label)
            axes.set_xlabel("epoch")
            axes.set_ylabel(name if name == "loss" else "validation ROC AUC")
            if name == "auc":
                axes.set_ylim(0, 1.02)
            axes.grid(alpha=0.3)
            axes.legend()
            figure.tight_layout()
            figure.savefig(out / f"{name}.png")
        finally:
            plt.close(figure)


def write_roc_plot(curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], out_path: Path, title: str) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    try:
        for label, (fpr, tpr, auc) in curves.items():
            axes.plot(fpr, tpr, label=f"{label} (AUC {'n/a' if auc is None else f'{auc:.3f}'})")
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
        axes.set_xlabel("false positive rate")
        axes.set_ylabel("true positive rate")
        axes.set_title(title)
        axes.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(out_path)
    finally:
        plt.close(figure)
