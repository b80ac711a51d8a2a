"""``ftcn evaluate CKPT DATASET --split test``: clip- and video-level AUC, EER, accuracy, confusion, ROC plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ftcn.checkpoints import load_model
from ftcn.datasets.split import load_split_rows
from ftcn.datasets.storage import DatasetStore, open_store
from ftcn.errors import DatasetError
from ftcn.training.data import ClipDataset, clip_refs
from ftcn.training.metrics import by_video, roc_curve
from ftcn.training.plots import write_roc_plot
from ftcn.training.train import evaluate_model


def evaluate(checkpoint_path: str | Path, dataset: str | DatasetStore, split: str = "test",
             out: str | Path | None = None, device: str = "cpu", batch_size: int = 8) -> dict[str, Any]:
    """Metrics at the checkpoint's own threshold; writes evaluation.json and roc.png into ``out`` when given."""
    model, checkpoint = load_model(checkpoint_path, device)
    store = open_store(dataset)
    dataset = store.location
    refs = clip_refs(load_split_rows(store), split)
    if not refs:
        raise DatasetError(f"{dataset}: no clips in the {split!r} split")
    clips = ClipDataset(store, refs, model.cfg)
    clips.check_shape()
    metrics, probabilities, loss = evaluate_model(model, clips, torch.device(device), checkpoint.threshold,
                                                  batch_size)
    result = {"checkpoint": str(checkpoint_path), "dataset": str(dataset), "split": split,
              "threshold": checkpoint.threshold, "loss": loss, **metrics}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(result, indent=2))
        labels = np.array([r.label for r in refs])
        _, video_labels, video_scores = by_video([r.video_id for r in refs], labels, probabilities)
        curves = {}
        for level, (lab, sco) in {"clip": (labels, probabilities),
                                  "video": (np.array(video_labels), np.array(video_scores))}.items():
            fpr, tpr, _ = roc_curve(np.asarray(lab, dtype=np.float64), np.asarray(sco, dtype=np.float64))
            curves[level] = (fpr, tpr, metrics[level]["auc"])
        write_roc_plot(curves, out / "roc.png", f"{split} split")
    return result
