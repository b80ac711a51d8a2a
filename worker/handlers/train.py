"""The train job: a registered dataset (and optionally a model to start from) trained on this worker's GPUs, the
best checkpoint stored with its plots and registered as a model."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from jobs.errors import ErrorCode
from jobs.keys import model_key
from jobs.models import Dataset, Model
from jobs.params import TrainParams, read_params
from jobs.service import clear_default
from worker.context import JobContext, Outcome, Succeeded, dataset_store, derived_id
from worker.failures import JobFailed


def train(ctx: JobContext) -> Outcome:
    from ftcn.cards import card_from_checkpoint
    from ftcn.checkpoints import load_checkpoint
    from ftcn.digests import file_sha256
    from ftcn.training.train import TrainConfig
    from ftcn.training.train import train as run_train
    from worker.distributed import processes_for, run_distributed, train_argv

    params = read_params(TrainParams, ctx.params)

    def inputs(session: Session) -> tuple[str, str | None]:
        dataset = session.get(Dataset, params.dataset_id)
        if dataset is None:
            raise JobFailed(ErrorCode.UNKNOWN_DATASET, f"dataset {params.dataset_id} no longer exists")
        init_key = None
        if params.init_model_id:
            init = session.get(Model, params.init_model_id)
            if init is None:
                raise JobFailed(ErrorCode.UNKNOWN_MODEL, f"model {params.init_model_id} no longer exists")
            init_key = init.storage_key
        return dataset.storage_prefix, init_key

    dataset_prefix, init_key = ctx.db(inputs)
    location = ctx.storage.dataset_location(dataset_prefix)  # the processes of a distributed run open it themselves
    model_id = derived_id(ctx.job_id, "model")
    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        init_path = None
        if init_key:
            init_path = work / "init.pt"
            ctx.storage.download(init_key, init_path)
        split_file = None
        if params.split:
            split_file = work / "split.csv"
            with open(split_file, "w", newline="") as handle:
                csv.writer(handle).writerows([("video", "split"), *params.split.items()])
        cfg = TrainConfig(**_train_values(params), init=str(init_path) if init_path else None,
                          split_file=str(split_file) if split_file else None)

        def epochs(done: int, total: int) -> None:
            ctx.progress("train", 95.0 * done / max(1, total))

        processes = processes_for(ctx.settings)
        if processes > 1:  # every GPU of this worker, one process each (torch.distributed)
            run_distributed(train_argv(str(location), work / "run", cfg, processes), work / "run", cfg.epochs,
                            epochs, ctx.canceled)
            summary = json.loads((work / "run" / "summary.json").read_text())
        else:
            summary = run_train(dataset_store(ctx, dataset_prefix), work / "run", cfg,
                                progress=lambda stage, done, total: epochs(done, total or 1) if stage == "epoch"
                                else None)
        checkpoint = load_checkpoint(work / "run" / "best.pt")
        weights_digest = file_sha256(work / "run" / "best.pt")
        artifacts = {"checkpoint": model_key(model_id), "loss_plot": model_key(model_id, "loss.png"),
                     "auc_plot": model_key(model_id, "auc.png"), "metrics": model_key(model_id, "metrics.jsonl")}
        ctx.storage.put_file(artifacts["checkpoint"], work / "run" / "best.pt")
        ctx.storage.put_file(artifacts["loss_plot"], work / "run" / "loss.png", "image/png")
        ctx.storage.put_file(artifacts["auc_plot"], work / "run" / "auc.png", "image/png")
        ctx.storage.put_file(artifacts["metrics"], work / "run" / "metrics.jsonl", "application/x-ndjson")

    def register(session: Session) -> None:
        if params.make_default:
            clear_default(session, ctx.owner)
        session.merge(Model(id=model_id, name=params.name or f"trained-{model_id[:8]}", source_job_id=ctx.job_id,
                            owner=ctx.owner, metrics=summary["best_val"], threshold=checkpoint.threshold,
                            storage_key=artifacts["checkpoint"], config=checkpoint.config.to_dict(),
                            card=card_from_checkpoint(checkpoint), sha256=weights_digest,
                            is_default=params.make_default))

    ctx.db(register)
    return Succeeded({"model_id": model_id, "metrics": summary["best_val"], "threshold": checkpoint.threshold,
                      "epochs": summary["epochs_run"], "processes": processes, "artifacts": artifacts})


def _train_values(params: TrainParams) -> dict[str, Any]:
    """TrainConfig values of a train job: its recipe's, with the fields the request set put over them."""
    from ftcn.training.recipes import recipe

    if not params.recipe:
        return params.config_values(None)
    chosen = recipe(params.recipe)
    return {**params.config_values(chosen.train), "recipe": chosen.name}
