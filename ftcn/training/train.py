"""``ftcn train``: fine-tune FTCN+TT on a preprocessed dataset (all layers, or the head with ``--freeze``).

AdamW on BCE-with-logits; per epoch, validation at clip and video level; the best checkpoint (validation video AUC,
then clip AUC, then lower loss) and the last one (resumable) in our checkpoint format, with the decision threshold
chosen on validation videos by Youden's J. GPU paths (CUDA, bf16 autocast, torch.compile, DDP under torchrun) are
kept small; everything runs on CPU.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ftcn.checkpoints import load_checkpoint, load_strict, load_training_state, save_checkpoint, weights_digest
from ftcn.datasets.split import load_split_rows, rows_from_split_file
from ftcn.datasets.storage import DatasetStore, open_store
from ftcn.errors import BadOption, DatasetError
from ftcn.models import FTCN, build_model, config_for_size
from ftcn.precision_check import check_checkpoint, save_checked
from ftcn.training.data import ClipDataset, clip_refs, read_clip
from ftcn.training.metrics import by_video, choose_band, choose_threshold, summarise
from ftcn.training.plots import write_training_plots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    model_size: str = "tiny"
    init: str | None = None
    freeze: bool = False
    seed: int = 0
    accumulate: int = 1
    class_weighting: bool = False
    workers: int = 0
    device: str = "auto"
    resume: bool = False
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    split_file: str | None = None  # an external video,split CSV instead of the dataset's own split
    optimizer: str = "adamw"  # adamw, adam or sgd (momentum 0.9)
    lr_step: int = 0  # multiply the learning rate by lr_gamma every lr_step optimizer steps (0: constant)
    lr_gamma: float = 0.1
    erase_prob: float = 0.0  # chance of erasing a black rectangle from every frame of a training clip alike
    recipe: str | None = None  # the named recipe (or setting file) these values came from
    #: After training, judge bf16 and int8 against fp32 on the validation videos and record those that pass in
    #: best.pt (ftcn.precision_check): predictions then run in the fastest of them.
    check_precisions: bool = True


OPTIMIZERS = ("adamw", "adam", "sgd")


def _optimizer(cfg: TrainConfig, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise BadOption(f"unknown optimizer {cfg.optimizer!r}; one of {', '.join(OPTIMIZERS)}")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadOption("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)


def _build(cfg: TrainConfig, clip_shape: tuple[int, ...]) -> FTCN:
    """The model to train: from --init (its own config), else the chosen size at the data's clip shape."""
    if cfg.init:
        checkpoint = load_checkpoint(cfg.init)
        model = build_model(checkpoint.config)
        load_strict(model, checkpoint.state_dict, f"--init {cfg.init}")
        return model
    base = config_for_size(cfg.model_size)
    frames, size = clip_shape[0], clip_shape[1]
    return build_model(dataclasses.replace(base, clip_len=frames, image_size=size))


def _probabilities(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, float]:
    """Validation probabilities and mean BCE loss."""
    model.eval()
    probabilities, losses = [], []
    with torch.inference_mode():
        for clips, labels in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(clips.to(device))
            logits = logits.float()
            losses.append(nn.functional.binary_cross_entropy_with_logits(logits, labels.to(device), reduction="sum"))
            probabilities.append(torch.sigmoid(logits).cpu())
    total = len(loader.dataset)
    return torch.cat(probabilities).numpy(), float(torch.stack(losses).sum()) / max(1, total)


def evaluate_model(model: FTCN, dataset: ClipDataset, device: torch.device, threshold: float,
                   batch_size: int = 8) -> tuple[dict[str, Any], np.ndarray, float]:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    probabilities, loss = _probabilities(model, loader, device)
    ids = [r.video_id for r in dataset.refs]
    labels = [r.label for r in dataset.refs]
    return summarise(ids, labels, probabilities, threshold), probabilities, loss


def _rank(metrics: dict[str, Any], loss: float) -> tuple[float, float, float]:
    return (metrics["video"]["auc"] or 0.0, metrics["clip"]["auc"] or 0.0, -loss)


def train(dataset: str | DatasetStore, out: str | Path, cfg: TrainConfig | None = None,
          progress: Callable[[str, int, int | None], None] | None = None) -> dict[str, Any]:
    """Train on ``dataset`` (a location, or a store opened with its endpoint) and return the summary (also in
    ``out/summary.json``); checkpoints in ``out/best.pt``/``last.pt``."""
    cfg = cfg or TrainConfig()
    out = Path(out)
    report = progress or (lambda stage, done, total: None)
    torch.manual_seed(cfg.seed)
    store = open_store(dataset)
    dataset = store.location
    rows = rows_from_split_file(store, cfg.split_file) if cfg.split_file else load_split_rows(store)
    train_refs, val_refs = clip_refs(rows, "train"), clip_refs(rows, "val")
    if not train_refs:
        raise DatasetError(f"{dataset}: no training clips")
    if len({r.label for r in train_refs}) < 2:
        raise DatasetError(f"{dataset}: the training split holds only one class; a detector needs real and fake")
    if not val_refs:
        raise DatasetError(f"{dataset}: no validation clips (split with --val > 0); the threshold is chosen on them")

    missing = sorted({r.path for r in train_refs + val_refs if not store.exists(r.path)})
    if missing:
        raise DatasetError(f"{dataset}: the manifest points at {len(missing)} missing clip files, e.g. "
                                f"{', '.join(missing[:3])} (preprocess again)")
    origin = json.loads(store.get("origin.json")) if store.exists("origin.json") else {}  # for the model card
    model = _build(cfg, read_clip(store, train_refs[0]).shape)
    train_set = ClipDataset(store, train_refs, model.cfg, augment=True, seed=cfg.seed, erase_prob=cfg.erase_prob)
    val_set = ClipDataset(store, val_refs, model.cfg)
    train_set.check_shape()

    device = _device(cfg.device)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:  # started by torchrun: one process per GPU
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    is_main = not distributed or torch.distributed.get_rank() == 0
    if cfg.freeze:
        model.freeze_backbone()
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(cfg, trainable)
    # stepped per optimizer step, as the official setting counts its lr_step in steps
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step or 10**12, gamma=cfg.lr_gamma)
    start_epoch, history, best_rank = 0, [], (-1.0, -1.0, -float("inf"))
    if cfg.resume and (out / "last.pt").exists():
        checkpoint, state = load_training_state(out / "last.pt")
        load_strict(model, {k: v.to(device) for k, v in checkpoint.state_dict.items()}, "resume checkpoint")
        optimizer.load_state_dict(state["optimizer"])
        if "schedule" in state:
            schedule.load_state_dict(state["schedule"])
        start_epoch, history = int(state["epoch"]) + 1, json.loads(state["history"])
        best_rank = tuple(json.loads(state["best_rank"]))
    runner: nn.Module = model
    if distributed:
        runner = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if device.type == "cuda":
        runner = torch.compile(runner)

    fakes = sum(r.label for r in train_refs)
    pos_weight = torch.tensor((len(train_refs) - fakes) / fakes, device=device) if cfg.class_weighting else None
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    sampler = torch.utils.data.DistributedSampler(train_set, seed=cfg.seed) if distributed else None
    generator = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.workers, generator=generator, drop_last=len(train_set) > cfg.batch_size)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False)
    out.mkdir(parents=True, exist_ok=True)
    steps, started = 0, time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        train_set.epoch = epoch
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        epoch_loss, seen = 0.0, 0
        optimizer.zero_grad(set_to_none=True)
        for batch_index, (clips, labels) in enumerate(loader):
            clips, labels = clips.to(device), labels.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = runner(clips)
            loss = loss_fn(logits.float(), labels)
            (loss / cfg.accumulate).backward()
            if (batch_index + 1) % cfg.accumulate == 0 or batch_index + 1 == len(loader):
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                steps += 1
            epoch_loss += loss.item() * len(labels)
            seen += len(labels)
            report("train", batch_index + 1, len(loader))
            if cfg.max_steps is not None and steps >= cfg.max_steps:
                break
        # every rank takes the same number of steps (DistributedSampler pads), so all decide alike to stop
        stop = cfg.max_steps is not None and steps >= cfg.max_steps
        report("epoch", epoch + 1, cfg.epochs)
        if not is_main:  # rank 0 alone validates, logs and writes checkpoints
            if stop:
                break
            continue
        probabilities, val_loss = _probabilities(model, val_loader, device)
        val_ids, val_labels = [r.video_id for r in val_refs], [r.label for r in val_refs]
        _, video_labels, video_scores = by_video(val_ids, val_labels, probabilities)
        epoch_threshold = choose_threshold(video_labels, video_scores)
        band = choose_band(video_labels, video_scores, epoch_threshold)
        metrics = summarise(val_ids, val_labels, probabilities, epoch_threshold)
        entry = {"epoch": epoch, "train_loss": epoch_loss / max(1, seen), "val_loss": val_loss,
                 "threshold": epoch_threshold, "band": band, "val": metrics,
                 "seconds": time.perf_counter() - started}
        history.append(entry)
        with open(out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        log.info("epoch %d: train loss %.4f, val loss %.4f, val video AUC %s", epoch, entry["train_loss"],
                 val_loss, metrics["video"]["auc"])
        summary = _summary(cfg, dataset, model, history, len(train_refs), len(val_refs), origin)
        rank = _rank(metrics, val_loss)
        if rank > best_rank:
            best_rank = rank
            save_checkpoint(out / "best.pt", model, epoch_threshold, {**summary, "best_epoch": epoch},
                            band=(band["low"], band["high"]))
        save_checkpoint(out / "last.pt", model, epoch_threshold, summary, band=(band["low"], band["high"]),
                        training_state={
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch,
            "history": json.dumps(history),
            "best_rank": json.dumps(list(best_rank)),
        })
        write_training_plots(history, out)
        if stop:
            break
    summary = _summary(cfg, dataset, model, history, len(train_refs), len(val_refs), origin)
    summary["seconds"] = time.perf_counter() - started
    if distributed:
        summary["distributed"] = _same_model_everywhere(model, device)
        # DDP's reducer holds gloo work objects; freed at interpreter exit instead, they abort the process
        # ("terminate called without an active exception"): free them first, then leave the group together
        del runner
        gc.collect()
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if is_main and cfg.check_precisions and (out / "best.pt").is_file():
        report("precision", 0, 1)
        checked, _ = check_checkpoint(load_checkpoint(out / "best.pt"), store, rows=rows)
        save_checked(out / "best.pt", checked)
        summary["precision"] = checked.metadata["precision"]
        report("precision", 1, 1)
    if is_main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _same_model_everywhere(model: nn.Module, device: torch.device) -> dict[str, Any]:
    """After DDP training: every rank's weights digest, gathered; they must be equal (DDP keeps the parameters in
    step, so a difference is a bug that would make the checkpoint one replica's guess). Buffers (BatchNorm's
    running statistics) are rank 0's, as DDP broadcasts them before every forward: the last forward of each rank
    moved its own, so rank 0's are sent once more first."""
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer.data, src=0)
    digests: list[str | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(digests, weights_digest(model))
    if len(set(digests)) != 1:
        raise RuntimeError(f"the training processes ended with different weights: {digests}")
    return {"world_size": len(digests), "backend": torch.distributed.get_backend(),
            "rank_weights_sha256": digests}


def _summary(cfg: TrainConfig, dataset: str, model: FTCN, history: list[dict], n_train: int,
             n_val: int, origin: dict[str, Any]) -> dict[str, Any]:
    best = max(history, key=lambda e: _rank(e["val"], e["val_loss"])) if history else None
    return {
        "trained": True,
        "dataset": str(dataset),
        "training_data": origin,
        "model": model.cfg.name,
        "train_clips": n_train,
        "val_clips": n_val,
        "epochs_run": len(history),
        "freeze": cfg.freeze,
        "init": cfg.init,
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "lr_step": cfg.lr_step,
        "lr_gamma": cfg.lr_gamma,
        "erase_prob": cfg.erase_prob,
        "recipe": cfg.recipe,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "threshold_rule": "Youden's J on validation video scores (mean clip probability per video)",
        "band_rule": "the narrowest band around the threshold outside which validation videos are called with "
                     "95 % accuracy, holding at most 20 % of them (ftcn.training.metrics.choose_band)",
        "best_band": best.get("band") if best else None,
        "best_epoch": best["epoch"] if best else None,
        "best_val": best["val"] if best else None,
    }
