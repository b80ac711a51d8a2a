"""What each job kind does: fetch its inputs, call ``ftcn``, store artifacts, return the result document.

Errors are not translated here: typed errors rise to the task wrapper, which gives each its code in one table
(``worker.failures``); a handler raises :class:`JobFailed` only for a decision of its own. Models and face
backends come from the worker's state (loaded once per process).
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ftcn.faces.names import DEFAULT_BACKEND
from jobs import reuse
from jobs.archives import extract_archive
from jobs.db import unit_of_work
from jobs.errors import ErrorCode
from jobs.models import Dataset, Job, Model
from jobs.service import clear_default
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from jobs.storage import Storage, copy_s3_prefix, dataset_prefix, job_artifact_key, job_input_key, model_key
from jobs.urls import fetch_url
from worker.failures import JobFailed

if TYPE_CHECKING:
    from worker.state import WorkerState

MAX_ARCHIVE_FILES = 10_000
T = TypeVar("T")


@dataclass
class JobContext:
    job_id: str
    params: dict[str, Any]
    state: WorkerState
    progress: Callable[[str, float], None]
    owner: str | None = None  # the job's owner: datasets and models it creates belong to them

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def storage(self) -> Storage:
        return self.state.storage

    def db(self, operation: Callable[[Session], T]) -> T:
        """One unit of work, retried while the database is unavailable (a restart delays the job, never fails it)."""
        return unit_of_work(self.state.sessions, operation)

    def canceled(self) -> bool:
        """Whether the job was canceled (or deleted) since it started."""
        return self.db(lambda session: (session.scalar(select(Job.status).where(Job.id == self.job_id))
                                        in (None, JobStatus.CANCELED.value)))


def derived_id(job_id: str, what: str) -> str:
    """The id of what a job creates, derived from the job's id: a rerun after a crash writes the same rows and keys
    instead of a second dataset or model."""
    return str(uuid.uuid5(uuid.UUID(job_id), what))


class Split(Exception):
    """The job was split into segments (``jobs.segments``): it goes on on other workers; nothing to record now."""

    def __init__(self, segments: int) -> None:
        super().__init__(f"split into {segments} segments")
        self.segments = segments


@dataclass
class PredictSetup:
    """What every step of a predict job needs: the model (row and network), the face backend, the options."""

    model_name: str
    card: dict[str, Any] | None
    network: Any
    checkpoint: Any
    backend: Any
    options: Any  # ftcn.predict.pipeline.PredictOptions

    @classmethod
    def of(cls, ctx: JobContext) -> "PredictSetup":
        from ftcn.predict.pipeline import PredictOptions

        def model_row(session: Session) -> tuple[str, str, dict[str, Any] | None, str | None]:
            row = session.get(Model, ctx.params["model_id"])
            if row is None:
                raise JobFailed(ErrorCode.UNKNOWN_MODEL, f"model {ctx.params['model_id']} no longer exists")
            return row.storage_key, row.name, row.card, row.sha256

        storage_key, name, card, sha256 = ctx.db(model_row)
        chosen = ctx.params.get("options") or {}
        network, checkpoint = ctx.state.model(ctx.params["model_id"], storage_key, sha256)
        backend = ctx.state.backend(chosen.get("backend") or DEFAULT_BACKEND, chosen.get("detector_id"))
        options = PredictOptions(stride=chosen.get("stride"), max_frames=chosen.get("max_frames"),
                                 limits=video_limits(ctx.settings), precision=ctx.settings.precision,
                                 runtime=ctx.settings.runtime, card=card)
        return cls(name, card, network, checkpoint, backend, options)


def video_limits(settings: Settings) -> Any:
    """How the worker decodes every input (``ftcn.video.decode.VideoLimits``): the service's bounds, in the cage
    (``ftcn.video.cage``): a file from a stranger never shares a process with the worker's secrets."""
    from ftcn.video.cage import Cage
    from ftcn.video.decode import VideoLimits

    return VideoLimits(max_duration_s=settings.max_video_s,
                       cage=Cage(memory_mb=settings.decode_memory_mb, cpu_s=settings.decode_cpu_s))


def fetch_input(ctx: JobContext, video: Path) -> None:
    """The job's video, from storage (uploads) or from its URL."""
    if "input_key" in ctx.params:
        ctx.storage.download(ctx.params["input_key"], video)
    else:
        fetch_url(ctx.params["video_url"], video, max_bytes=ctx.settings.max_upload_mb * 1024 * 1024,
                  allowlist=ctx.settings.url_allowlist)


def predict(ctx: JobContext) -> dict[str, Any]:
    from ftcn.digests import file_sha256
    from ftcn.predict.pipeline import predict_video

    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        video = work / "input.mp4"
        fetch_input(ctx, video)
        digest = file_sha256(video)
        reused = ctx.db(lambda session: reuse.on_worker(session, ctx.job_id, ctx.params, digest, ctx.settings))
        if reused is not None:  # a finished job already answered this content with this model and options
            return reused
        ctx.progress("faces", 1.0)
        setup = PredictSetup.of(ctx)
        _split_if_long(ctx, setup, video)

        def report(stage: str, done: int, total: int | None) -> None:
            share = {"faces": (0, 85), "clips": (85, 90)}[stage]  # the stream classifies clips as it decodes
            fraction = done / total if total else 0.0
            ctx.progress(stage, share[0] + (share[1] - share[0]) * min(1.0, fraction))

        result = predict_video(video, setup.network, setup.checkpoint, setup.backend, setup.options,
                               progress=report)
        return publish_result(ctx, setup, video, result, work)


def _split_if_long(ctx: JobContext, setup: PredictSetup, video: Path) -> None:
    """A video longer than ``FTCN_SEGMENT_S`` goes on as segments on any free workers (``jobs.segments``):
    raises :class:`Split` once they are recorded and sent. Shorter videos return and run here."""
    from ftcn.predict.faces_pass import scan_interval
    from ftcn.predict.segments import plan_segments
    from ftcn.video.decode import probe
    from jobs.queue import enqueue_segments
    from jobs.segments import split

    if ctx.settings.segment_s <= 0:
        return
    info = probe(video, setup.options.limits)
    if not info.duration_s or info.duration_s <= ctx.settings.segment_s or not info.frame_count:
        return
    frames = min(info.frame_count, setup.options.max_frames or info.frame_count)
    plans = plan_segments(frames, info.fps, ctx.settings.segment_s, setup.network.cfg.clip_len,
                          scan_interval(setup.backend, info, setup.options.detect_every))
    if len(plans) < 2:
        return
    if "input_key" not in ctx.params:  # fetched from a URL: every segment's worker reads the stored copy
        key = job_input_key(ctx.job_id, "video.mp4")
        ctx.storage.put_file(key, video, "video/mp4")
        ctx.db(lambda session: _store_input_key(session, ctx.job_id, key))
        ctx.params["input_key"] = key
    ids = ctx.db(lambda session: split(session, ctx.job_id, [plan.to_dict() for plan in plans]))
    enqueue_segments(ctx.state.celery, ids, ctx.settings)
    raise Split(len(plans))


def _store_input_key(session: Session, job_id: str, key: str) -> None:
    job = session.get(Job, job_id)
    job.params = {**job.params, "input_key": key}


def publish_result(ctx: JobContext, setup: PredictSetup, video: Path, result: dict[str, Any],
                   work: Path) -> dict[str, Any]:
    """Annotated video, face pictures, timeline and result.json stored under the job; the job's summary."""
    from ftcn.cards import card_line
    from ftcn.render.annotate import write_annotated_video
    from ftcn.render.thumbnails import FaceThumbnails
    from ftcn.render.timeline import write_timeline_plot
    from jobs.metrics import observe_stages  # not at import: the worker picks the metrics mode first (jobs.multiproc)

    result["input"]["filename"] = ctx.params.get("filename") or ctx.params.get("video_url", "video")
    ctx.progress("annotate", 90.0)
    faces = FaceThumbnails(result)  # cropped during the annotation pass: no third decode
    encoding = time.perf_counter()
    write_annotated_video(video, result, work / "annotated.mp4", setup.options.limits, on_frame=faces.see)
    observe_stages(result["timings_s"], encode_s=time.perf_counter() - encoding)
    thumbnails = faces.write(work / "faces")
    write_timeline_plot(result, work / "timeline.png")
    (work / "result.json").write_text(json.dumps(result, indent=2))
    artifacts = {name: job_artifact_key(ctx.job_id, file) for name, file in (
        ("result", "result.json"), ("annotated_video", "annotated.mp4"), ("timeline", "timeline.png"))}
    ctx.storage.put_file(artifacts["result"], work / "result.json", "application/json")
    ctx.storage.put_file(artifacts["annotated_video"], work / "annotated.mp4", "video/mp4")
    ctx.storage.put_file(artifacts["timeline"], work / "timeline.png", "image/png")
    for track_id, path in sorted(thumbnails.items()):
        artifacts[f"face_{track_id}"] = job_artifact_key(ctx.job_id, f"faces/{track_id}.jpg")
        ctx.storage.put_file(artifacts[f"face_{track_id}"], path, "image/jpeg")
    return {"verdict": result["verdict"], "score": result["score"], "threshold": result["threshold"],
            "faces": sum(track["score"] is not None for track in result["tracks"]),
            "faces_seen": len(result["tracks"]), "coverage": result["coverage"],
            "no_face_reason": result["no_face_reason"], "inconclusive_reasons": result["inconclusive_reasons"],
            "band": result["band"], "backend": result["faces"]["backend"],
            "model_id": ctx.params["model_id"], "model_name": setup.model_name, "model_card": result["model"]["card"],
            "model_card_line": card_line(setup.model_name, result["model"]["card"]),
            **({"segments": len(result["segments"])} if result.get("segments") else {}),
            "artifacts": artifacts}


def preprocess(ctx: JobContext) -> dict[str, Any]:
    from ftcn.datasets.preprocess import PreprocessConfig
    from ftcn.datasets.preprocess import preprocess as run_preprocess
    from ftcn.datasets import standard
    from ftcn.datasets.sources import load_source
    from ftcn.datasets.split import keep_official_split, split_dataset
    from ftcn.datasets.storage import open_store

    options = dict(ctx.params.get("options") or {})
    split_options = {k: options.pop(k) for k in ("val", "test", "seed") if k in options}
    kind = options.pop("dataset", None)
    chosen = {k: options.pop(k) for k in ("compression", "methods", "variant") if k in options}
    selection = standard.DatasetOptions(compression=chosen.get("compression") or "c23",
                                        methods=tuple(chosen.get("methods") or ()),
                                        variant=chosen.get("variant") or "end_to_end")
    options["backend"] = options.get("backend") or DEFAULT_BACKEND
    if detector_id := options.pop("detector_id", None):
        files = ctx.state.detector_files(detector_id)
        options.update(retinaface_weights=files["retinaface"], landmark_weights=files["landmarks"])
    dataset_id = derived_id(ctx.job_id, "dataset")
    location = ctx.storage.dataset_location(dataset_prefix(dataset_id))
    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        if "input_key" in ctx.params:
            archive = work / Path(ctx.params["input_key"]).name
            ctx.storage.download(ctx.params["input_key"], archive)
            extract_archive(archive, work / "source", max_bytes=ctx.settings.max_upload_mb * 4 * 1024 * 1024,
                            max_files=MAX_ARCHIVE_FILES)
        else:
            copy_s3_prefix(ctx.params["s3_prefix"], work / "source", endpoint_url=ctx.settings.s3_endpoint_url,
                           max_files=MAX_ARCHIVE_FILES, max_bytes=ctx.settings.max_upload_mb * 4 * 1024 * 1024)
        if kind:  # a standard dataset as downloaded: its own layout, labels and official split
            entries = standard.read_dataset(kind, standard.find_root(kind, work / "source"), selection)
            origin = standard.origin(kind, entries)
        else:
            entries, origin = load_source(_dataset_root(work / "source")), None
        summary = run_preprocess(entries, location, PreprocessConfig(**options, limits=video_limits(ctx.settings)),
                                 origin=origin,
                                 on_video=lambda done, total: ctx.progress("preprocess", 95 * done / max(1, total)))
    if summary.clips == 0:
        raise JobFailed(ErrorCode.NO_CLIPS, f"no usable face clips in {summary.videos} videos")
    store = open_store(location)
    described: dict[str, Any] = {}
    if kind:
        split = keep_official_split(store, split_options.get("val", 0.1), split_options.get("seed", 0))
        counts = split["videos"]
        described = {"kind": kind, "val_from_train": split["val_from_train"]}
        store.put("dataset.json", json.dumps({**standard.description(kind, selection, entries),
                                               "split": split}).encode())
    else:
        counts = split_dataset(store, split_options.get("val", 0.25), split_options.get("test", 0.0),
                               split_options.get("seed", 0))
    ctx.db(lambda session: session.merge(Dataset(
        id=dataset_id, source_job_id=ctx.job_id, storage_prefix=dataset_prefix(dataset_id), owner=ctx.owner,
        counts={"videos": summary.videos, "failed": summary.failed, "clips": summary.clips, "split_videos": counts,
                **described})))
    return {"dataset_id": dataset_id, "videos": summary.videos, "failed": summary.failed, "clips": summary.clips,
            "failures": summary.failures}


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
    from ftcn.cards import card_from_checkpoint
    from ftcn.checkpoints import load_checkpoint
    from ftcn.digests import file_sha256
    from ftcn.training.train import TrainConfig
    from ftcn.training.train import train as run_train
    from worker.distributed import processes_for, run_distributed, train_argv

    params = ctx.params
    def inputs(session: Session) -> tuple[str, str | None]:
        dataset = session.get(Dataset, params["dataset_id"])
        if dataset is None:
            raise JobFailed(ErrorCode.UNKNOWN_DATASET, f"dataset {params['dataset_id']} no longer exists")
        init_key = None
        if params.get("init_model_id"):
            init = session.get(Model, params["init_model_id"])
            if init is None:
                raise JobFailed(ErrorCode.UNKNOWN_MODEL, f"model {params['init_model_id']} no longer exists")
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
        split_file = None
        if params.get("split"):
            split_file = work / "split.csv"
            with open(split_file, "w", newline="") as handle:
                csv.writer(handle).writerows([("video", "split"), *params["split"].items()])
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
            summary = run_train(location, work / "run", cfg,
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
        if params.get("make_default"):
            clear_default(session, ctx.owner)
        session.merge(Model(id=model_id, name=params.get("name") or f"trained-{model_id[:8]}", source_job_id=ctx.job_id,
                            owner=ctx.owner, metrics=summary["best_val"], threshold=checkpoint.threshold,
                            storage_key=artifacts["checkpoint"], config=checkpoint.config.to_dict(),
                            card=card_from_checkpoint(checkpoint), sha256=weights_digest,
                            is_default=bool(params.get("make_default"))))

    ctx.db(register)
    return {"model_id": model_id, "metrics": summary["best_val"], "threshold": checkpoint.threshold,
            "epochs": summary["epochs_run"], "processes": processes, "artifacts": artifacts}


def _train_values(params: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig values of a train job: its recipe's, with the fields the request set put over them."""
    from ftcn.training.recipes import recipe

    fields = ("epochs", "batch_size", "lr", "model_size", "freeze")
    if not params.get("recipe"):
        return {name: params[name] for name in fields}
    chosen = recipe(params["recipe"])
    return {**chosen.train, **{name: params[name] for name in fields if name in params.get("given", ())},
            "recipe": chosen.name}


HANDLERS: dict[JobKind, Callable[[JobContext], dict[str, Any]]] = {
    JobKind.PREDICT: predict, JobKind.PREPROCESS: preprocess, JobKind.TRAIN: train,
}
