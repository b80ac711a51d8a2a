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
from jobs.keys import dataset_prefix
from jobs.models import Dataset
from jobs.params import PreprocessParams, read_params
from jobs.storage import copy_s3_prefix
from worker.context import JobContext, Outcome, Succeeded, dataset_store, derived_id, video_limits
from worker.failures import JobFailed

MAX_ARCHIVE_FILES = 10_000


def preprocess(ctx: JobContext) -> Outcome:
    from ftcn.datasets.preprocess import PreprocessConfig
    from ftcn.datasets.preprocess import preprocess as run_preprocess
    from ftcn.datasets import standard
    from ftcn.datasets.sources import load_source
    from ftcn.datasets.split import keep_official_split, split_dataset

    params = read_params(PreprocessParams, ctx.params)
    chosen = params.options
    kind = chosen.dataset
    selection = standard.DatasetOptions(compression=chosen.compression or "c23", methods=tuple(chosen.methods or ()),
                                        variant=chosen.variant or "end_to_end")
    options = chosen.model_dump(exclude={*chosen.SPLIT_FIELDS, *chosen.SELECTION_FIELDS, "detector_id"})
    options["backend"] = chosen.backend or DEFAULT_BACKEND
    if detector_id := chosen.detector_id:
        files = ctx.state.detector_files(detector_id)
        options.update(retinaface_weights=files["retinaface"], landmark_weights=files["landmarks"])
    dataset_id = derived_id(ctx.job_id, "dataset")
    store = dataset_store(ctx, dataset_prefix(dataset_id))
    with tempfile.TemporaryDirectory(prefix="ftcn-job-") as folder:
        work = Path(folder)
        if params.input_key is not None:
            archive = work / Path(params.input_key).name
            ctx.storage.download(params.input_key, archive)
            extract_archive(archive, work / "source", max_bytes=ctx.settings.max_upload_mb * 4 * 1024 * 1024,
                            max_files=MAX_ARCHIVE_FILES)
        else:
            copy_s3_prefix(params.s3_prefix or "", work / "source", endpoint_url=ctx.settings.s3_endpoint_url,
                           max_files=MAX_ARCHIVE_FILES, max_bytes=ctx.settings.max_upload_mb * 4 * 1024 * 1024)
        if kind:  # a standard dataset as downloaded: its own layout, labels and official split
            entries = standard.read_dataset(kind, standard.find_root(kind, work / "source"), selection)
            origin = standard.origin(kind, entries)
        else:
            entries, origin = load_source(_dataset_root(work / "source")), None
        summary = run_preprocess(entries, store, PreprocessConfig(**options, limits=video_limits(ctx.settings)),
                                 origin=origin,
                                 on_video=lambda done, total: ctx.progress("preprocess", 95 * done / max(1, total)))
    if summary.clips == 0:
        raise JobFailed(ErrorCode.NO_CLIPS, f"no usable face clips in {summary.videos} videos")
    described: dict[str, Any] = {}
    if kind:
        split = keep_official_split(store, chosen.val, chosen.seed)
        counts = split["videos"]
        described = {"kind": kind, "val_from_train": split["val_from_train"]}
        store.put("dataset.json", json.dumps({**standard.description(kind, selection, entries),
                                               "split": split}).encode())
    else:
        counts = split_dataset(store, chosen.val, chosen.test, chosen.seed)
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
