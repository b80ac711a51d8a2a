"""The preprocess job: a dataset archive (or S3 prefix) of labelled videos made into aligned face clips, split,
stored and registered as a dataset the train job can use."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ftcn.faces.names import DEFAULT_BACKEND
from jobs.archives import extract_archive
from jobs.errors import ErrorCode
from jobs.models import Dataset
from jobs.storage import copy_s3_prefix, dataset_prefix
from worker.context import JobContext, Outcome, Succeeded, derived_id, video_limits
from worker.failures import JobFailed

MAX_ARCHIVE_FILES = 10_000


def preprocess(ctx: JobContext) -> Outcome:
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
    return Succeeded({"dataset_id": dataset_id, "videos": summary.videos, "failed": summary.failed,
                      "clips": summary.clips, "failures": summary.failures})


def _dataset_root(folder: Path) -> Path:
    """The folder holding real/ and fake/ (archives often wrap everything in one top folder)."""
    if (folder / "real").is_dir() or (folder / "manifest.csv").exists():
        return folder
    children = [c for c in folder.iterdir() if c.is_dir()]
    if len(children) == 1:
        return _dataset_root(children[0])
    manifests = list(folder.glob("*.csv"))
    return manifests[0] if len(manifests) == 1 else folder
