"""What each job kind does: fetch its inputs, call ``ftcn``, store artifacts, return the result document.

Raise :class:`JobFailed` for anything the client can act on (bad video, unsafe URL, bad archive); the task wrapper
records it as the job's error. Models are loaded once per process and cached by model id.
"""

from __future__ import annotations

import functools
import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from jobs.archives import UnsafeArchive, extract_archive
from jobs.db import unit_of_work
from jobs.models import Dataset, Model
from jobs.service import clear_default
from jobs.settings import Settings
from jobs.states import JobKind
from jobs.storage import Storage
from jobs.urls import FetchFailed, UnsafeURL, fetch_url

MAX_ARCHIVE_FILES = 10_000
T = TypeVar("T")


class JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class JobContext:
    job_id: str
    params: dict[str, Any]
    settings: Settings
    sessions: sessionmaker
    storage: Storage
    progress: Callable[[str, float], None]
    owner: str | None = None  # the job's owner: datasets and models it creates belong to them

    def db(self, operation: Callable[[Session], T]) -> T:
        """One unit of work, retried while the database is unavailable (a restart delays the job, never fails it)."""
        return unit_of_work(self.sessions, operation)


def derived_id(job_id: str, what: str) -> str:
    """The id of what a job creates, derived from the job's id: a rerun after a crash writes the same rows and keys
    instead of a second dataset or model."""
    return str(uuid.uuid5(uuid.UUID(job_id), what))


_MODELS: dict[str, tuple[Any, Any]] = {}


def _model(model_id: str, storage_key: str, storage: Storage) -> tuple[Any, Any]:
    """(network, checkpoint) of a registered model, downloaded and loaded once per worker process."""
    if model_id not in _MODELS:
        import torch

        from ftcn.checkpoints import load_model

        cache = Path(tempfile.gettempdir()) / "ftcn-models" / model_id
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / "model.pt"
        if not path.exists():
            storage.download(storage_key, path)
        _MODELS[model_id] = load_model(path, "cuda" if torch.cuda.is_available() else "cpu")
    return _MODELS[model_id]


@functools.lru_cache(maxsize=1)
def _backend() -> Any:
    from ftcn.faces.backends import make_backend

    return make_backend("dlib")


def predict(ctx: JobContext) -> dict[str, Any]:
    from ftcn.predict.pipeline import PredictOptions, predict_video
    from ftcn.render.annotate import write_annotated_video
    from ftcn.render.thumbnails import FaceThumbnails
    from ftcn.render.timeline import write_timeline_plot
    from ftcn.video.decode import InvalidVideo, VideoLimits, VideoTooLarge

    def model_key(session: Session) -> str:
        model_row = session.get(Model, ctx.params["model_id"])
        if model_row is None:
            raise JobFailed("unknown-model", f"model {ctx.params['model_id']} no longer exists")
        return model_row.storage_key

    storage_key = ctx.db(model_key)
    network, checkpoint = _model(ctx.params["model_id"], storage_key, ctx.storage)
    options = ctx.params.get("options") or {}
    limits = VideoLimits(max_duration_s=ctx.settings.max_video_s)
    prefix = f"jobs/{ctx.job_id}"
    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        video = work / "input.mp4"
        if "input_key" in ctx.params:
            ctx.storage.download(ctx.params["input_key"], video)
        else:
            try:
                fetch_url(ctx.params["video_url"], video, max_bytes=ctx.settings.max_upload_mb * 1024 * 1024,
                          allowlist=ctx.settings.url_allowlist)
            except (UnsafeURL, FetchFailed) as exc:
                raise JobFailed("bad-url", str(exc)) from None
        ctx.progress("faces", 1.0)

        def report(stage: str, done: int, total: int | None) -> None:
            share = {"faces": (0, 60), "clips": (60, 90)}[stage]
            fraction = done / total if total else 0.0
            ctx.progress(stage, share[0] + (share[1] - share[0]) * min(1.0, fraction))

        try:
            result = predict_video(video, network, checkpoint, _backend(),
                                   PredictOptions(stride=options.get("stride"), max_frames=options.get("max_frames"),
                                                  limits=limits), progress=report)
            result["input"]["filename"] = ctx.params.get("filename") or ctx.params.get("video_url", "video")
            ctx.progress("annotate", 90.0)
            faces = FaceThumbnails(result)  # cropped during the annotation pass: no third decode
            write_annotated_video(video, result, work / "annotated.mp4", limits, on_frame=faces.see)
            thumbnails = faces.write(work / "faces")
        except VideoTooLarge as exc:
            raise JobFailed("video-too-large", str(exc)) from None
        except InvalidVideo as exc:
            raise JobFailed("invalid-video", str(exc)) from None
        write_timeline_plot(result, work / "timeline.png")
        (work / "result.json").write_text(json.dumps(result, indent=2))
        artifacts = {"result": f"{prefix}/result.json", "annotated_video": f"{prefix}/annotated.mp4",
                     "timeline": f"{prefix}/timeline.png"}
        ctx.storage.put_file(artifacts["result"], work / "result.json", "application/json")
        ctx.storage.put_file(artifacts["annotated_video"], work / "annotated.mp4", "video/mp4")
        ctx.storage.put_file(artifacts["timeline"], work / "timeline.png", "image/png")
        for track_id, path in sorted(thumbnails.items()):
            artifacts[f"face_{track_id}"] = f"{prefix}/faces/{track_id}.jpg"
            ctx.storage.put_file(artifacts[f"face_{track_id}"], path, "image/jpeg")
    return {"verdict": result["verdict"], "score": result["score"], "threshold": result["threshold"],
            "faces": len(result["tracks"]), "model_id": ctx.params["model_id"], "artifacts": artifacts}


def preprocess(ctx: JobContext) -> dict[str, Any]:
    from ftcn.datasets.preprocess import PreprocessConfig
    from ftcn.datasets.preprocess import preprocess as run_preprocess
    from ftcn.datasets.sources import InvalidSource, load_source
    from ftcn.datasets.split import split_dataset
    from ftcn.datasets.storage import open_store

    options = dict(ctx.params.get("options") or {})
    split_options = {k: options.pop(k) for k in ("val", "test", "seed") if k in options}
    dataset_id = derived_id(ctx.job_id, "dataset")
    location = ctx.storage.dataset_location(f"datasets/{dataset_id}")
    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        if "input_key" in ctx.params:
            archive = work / Path(ctx.params["input_key"]).name
            ctx.storage.download(ctx.params["input_key"], archive)
            try:
                extract_archive(archive, work / "source", max_bytes=ctx.settings.max_upload_mb * 4 * 1024 * 1024,
                                max_files=MAX_ARCHIVE_FILES)
            except UnsafeArchive as exc:
                raise JobFailed("bad-archive", str(exc)) from None
            source = _dataset_root(work / "source")
        else:
            source = _download_prefix(ctx.params["s3_prefix"], work / "source", ctx.settings)
        try:
            entries = load_source(source)
        except InvalidSource as exc:
            raise JobFailed("bad-dataset", str(exc)) from None
        summary = run_preprocess(entries, location, PreprocessConfig(**options),
                                 on_video=lambda done, total: ctx.progress("preprocess", 95 * done / max(1, total)))
    if summary.clips == 0:
        raise JobFailed("no-clips", f"no usable face clips in {summary.videos} videos")
    counts = split_dataset(open_store(location), split_options.get("val", 0.25), split_options.get("test", 0.0),
                           split_options.get("seed", 0))
    ctx.db(lambda session: session.merge(Dataset(
        id=dataset_id, source_job_id=ctx.job_id, storage_prefix=f"datasets/{dataset_id}", owner=ctx.owner,
        counts={"videos": summary.videos, "failed": summary.failed, "clips": summary.clips, "split_videos": counts})))
    return {"dataset_id": dataset_id, "videos": summary.videos, "failed": summary.failed, "clips": summary.clips,
            "failures": summary.failures}


def _download_prefix(url: str, folder: Path, settings: Settings) -> Path:
    """Copy the objects under an s3:// prefix (bounded in count and size) into ``folder``."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from jobs.storage import StorageError, check_key

    bucket, _, prefix = url[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    budget, count = settings.max_upload_mb * 4 * 1024 * 1024, 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                count += 1
                budget -= item["Size"]
                if count > MAX_ARCHIVE_FILES or budget < 0:
                    raise JobFailed("too-large", f"{url} holds more than the service accepts")
                relative = item["Key"][len(prefix):]
                if not relative or relative.endswith("/"):
                    continue
                target = folder / check_key(relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(target))
    except (BotoCoreError, ClientError, StorageError) as exc:
        raise JobFailed("bad-source", f"cannot read {url}: {exc}") from None
    if count == 0:
        raise JobFailed("bad-source", f"{url} holds no objects")
    return _dataset_root(folder)


def _dataset_root(folder: Path) -> Path:
    """The folder holding real/ and fake/ (archives often wrap everything in one top folder)."""
    if (folder / "real").is_dir() or (folder / "manifest.csv").exists():
        return folder
    children = [c for c in folder.iterdir() if c.is_dir()]
    if len(children) == 1:
        return _dataset_root(children[0])
    manifests = list(folder.glob("*.csv"))
    return manifests[0] if len(manifests) == 1 else folder


def train(ctx: JobContext) -> dict[str, Any]:
    from ftcn.checkpoints import load_checkpoint
    from ftcn.training.train import TrainConfig
    from ftcn.training.train import train as run_train

    params = ctx.params
    def inputs(session: Session) -> tuple[str, str | None]:
        dataset = session.get(Dataset, params["dataset_id"])
        if dataset is None:
            raise JobFailed("unknown-dataset", f"dataset {params['dataset_id']} no longer exists")
        init_key = None
        if params.get("init_model_id"):
            init = session.get(Model, params["init_model_id"])
            if init is None:
                raise JobFailed("unknown-model", f"model {params['init_model_id']} no longer exists")
            init_key = init.storage_key
        return dataset.storage_prefix, init_key

    dataset_prefix, init_key = ctx.db(inputs)
    location = ctx.storage.dataset_location(dataset_prefix)
    model_id = derived_id(ctx.job_id, "model")
    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        init_path = None
        if init_key:
            init_path = work / "init.pt"
            ctx.storage.download(init_key, init_path)
        cfg = TrainConfig(epochs=params["epochs"], batch_size=params["batch_size"], lr=params["lr"],
                          model_size=params["model_size"], freeze=params["freeze"],
                          init=str(init_path) if init_path else None)
        try:
            summary = run_train(location, work / "run", cfg, progress=lambda stage, done, total: None)
        except ValueError as exc:
            raise JobFailed("cannot-train", str(exc)) from None
        checkpoint = load_checkpoint(work / "run" / "best.pt")
        prefix = f"models/{model_id}"
        artifacts = {"checkpoint": f"{prefix}/model.pt", "loss_plot": f"{prefix}/loss.png",
                     "auc_plot": f"{prefix}/auc.png", "metrics": f"{prefix}/metrics.jsonl"}
        ctx.storage.put_file(artifacts["checkpoint"], work / "run" / "best.pt")
        ctx.storage.put_file(artifacts["loss_plot"], work / "run" / "loss.png", "image/png")
        ctx.storage.put_file(artifacts["auc_plot"], work / "run" / "auc.png", "image/png")
        ctx.storage.put_file(artifacts["metrics"], work / "run" / "metrics.jsonl", "application/x-ndjson")

    def register(session: Session) -> None:
        if params.get("make_default"):
            clear_default(session, ctx.owner)
        session.merge(Model(id=model_id, name=params.get("name") or f"trained-{model_id[:8]}", source_job_id=ctx.job_id,
                            owner=ctx.owner, metrics=summary["best_val"], threshold=checkpoint.threshold,
                            storage_key=artifacts["checkpoint"], config=checkpoint.config.to_dict(),
                            is_default=bool(params.get("make_default"))))

    ctx.db(register)
    return {"model_id": model_id, "metrics": summary["best_val"], "threshold": checkpoint.threshold,
            "epochs": summary["epochs_run"], "artifacts": artifacts}


HANDLERS: dict[JobKind, Callable[[JobContext], dict[str, Any]]] = {
    JobKind.PREDICT: predict, JobKind.PREPROCESS: preprocess, JobKind.TRAIN: train,
}
