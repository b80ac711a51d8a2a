"""Training data: preprocessed uint8 clips -> normalised tensors, with augmentation that keeps time intact.

FTCN learns from temporal incoherence, so an augmentation that differs between the frames of a clip would create
exactly the signal the model must learn to flag. Every random choice here is drawn once per clip and applied to
all its frames alike.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ftcn.datasets.arrays import load_arrays
from ftcn.datasets.storage import DatasetStore
from ftcn.errors import DatasetError
from ftcn.models import FTCNConfig


@dataclass(frozen=True)
class ClipRef:
    video_id: str
    label: float  # 1.0 = fake
    path: str
    index: int


def clip_refs(rows: list[dict[str, Any]], split: str) -> list[ClipRef]:
    return [
        ClipRef(r["video_id"], 1.0 if r["label"] == "fake" else 0.0, r["path"], int(r["index"]))
        for r in rows
        if r["split"] == split
    ]


def read_clip(store: DatasetStore, ref: ClipRef) -> np.ndarray:
    """One stored clip, uint8 [T, H, W, 3]."""
    return load_arrays(store.get(ref.path))["clips"][ref.index]


def erase_rectangle(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The official setting's ``strong_black`` erasing: one black rectangle (a tenth to a third of each side) at
    one place in every frame, so it hides part of the face without adding any change over time."""
    _, height, width, _ = clip.shape
    h = int(rng.integers(max(1, height // 10), max(2, height // 3) + 1))
    w = int(rng.integers(max(1, width // 10), max(2, width // 3) + 1))
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    erased = clip.copy()
    erased[:, top : top + h, left : left + w] = 0
    return erased


def augment_clip(clip: np.ndarray, rng: np.random.Generator, erase_prob: float = 0.0) -> np.ndarray:
    """[T, H, W, 3] uint8 -> same shape; one flip, crop and colour change (and maybe one erased rectangle) for the
    whole clip."""
    frames, height, width, _ = clip.shape
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    scale = rng.uniform(0.85, 1.0)
    crop_h, crop_w = int(height * scale), int(width * scale)
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    cropped = clip[:, top : top + crop_h, left : left + crop_w]
    resized = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in cropped])
    gain = rng.uniform(0.85, 1.15)
    bias = rng.uniform(-12, 12)
    augmented = np.clip(resized.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    if erase_prob > 0 and rng.random() < erase_prob:  # drawn last: without erasing, the draws above are unchanged
        augmented = erase_rectangle(augmented, rng)
    return augmented


class ClipDataset(Dataset):
    """Clips of one split; videos' .npz files are loaded on demand and a few are kept in memory."""

    def __init__(self, store: DatasetStore, refs: list[ClipRef], cfg: FTCNConfig, augment: bool = False,
                 seed: int = 0, cache_videos: int = 64, erase_prob: float = 0.0) -> None:
        self.store, self.refs, self.cfg, self.augment = store, refs, cfg, augment
        self.erase_prob = erase_prob
        self.seed = seed
        self.epoch = 0
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_videos = cache_videos
        self.mean = torch.tensor(cfg.mean).view(3, 1, 1, 1)
        self.std = torch.tensor(cfg.std).view(3, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.refs)

    def _clips(self, path: str) -> np.ndarray:
        if path not in self.cache:
            self.cache[path] = load_arrays(self.store.get(path))["clips"]
            if len(self.cache) > self.cache_videos:
                self.cache.popitem(last=False)
        self.cache.move_to_end(path)
        return self.cache[path]

    def check_shape(self) -> None:
        """Fail early when the preprocessed clips do not fit the model (clip length, image size)."""
        if not self.refs:
            return
        clip = self._clips(self.refs[0].path)[self.refs[0].index]
        want = (self.cfg.clip_len, self.cfg.image_size, self.cfg.image_size, 3)
        if clip.shape != want:
            raise DatasetError(f"dataset clips are {clip.shape[0]} frames of {clip.shape[1]}x{clip.shape[2]}, the model "
                             f"expects {want[0]} frames of {want[1]}x{want[2]} (preprocess with --clip-len/--size)")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        ref = self.refs[index]
        clip = self._clips(ref.path)[ref.index]
        if self.augment:
            clip = augment_clip(clip, np.random.default_rng((self.seed, self.epoch, index)), self.erase_prob)
        tensor = torch.from_numpy(np.ascontiguousarray(clip)).permute(3, 0, 1, 2).float()
        return (tensor - self.mean) / self.std, torch.tensor(ref.label)
