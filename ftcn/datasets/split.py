"""Train/val/test splits by source video, stratified by label (``ftcn split``).

Clips of one video are near-duplicates; splitting clips at random (as the TrueMedia fork does) leaks videos across
splits and inflates validation scores. Here a video and all its clips land in exactly one split.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ftcn.datasets.storage import DatasetStore
from ftcn.errors import BadOption, DatasetError

SPLITS = ("train", "val", "test")


def read_manifest(store: DatasetStore, name: str = "manifest.csv") -> list[dict[str, Any]]:
    if not store.exists(name):
        raise DatasetError(f"{store.location} has no {name} (run ftcn preprocess first)")
    return list(csv.DictReader(io.StringIO(store.get(name).decode())))


def assign_splits(videos: dict[str, str], val: float, test: float, seed: int) -> dict[str, str]:
    """video id -> split, per label: shuffle (seeded) and cut; every non-empty share gets at least one video
    when the label has enough videos for it."""
    if val < 0 or test < 0 or val + test >= 1:
        raise BadOption(f"--val {val} and --test {test} must be >= 0 and leave room for training")
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for label in sorted(set(videos.values())):
        ids = sorted(v for v, lab in videos.items() if lab == label)
        rng.shuffle(ids)
        n = len(ids)
        n_test = max(1, math.floor(n * test + 0.5)) if test > 0 and n >= 3 else 0
        n_val = max(1, math.floor(n * val + 0.5)) if val > 0 and n - n_test >= 2 else 0
        for i, video in enumerate(ids):
            assignment[video] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return assignment


def split_dataset(store: DatasetStore, val: float = 0.2, test: float = 0.1, seed: int = 0) -> dict[str, int]:
    """Write ``split.csv`` (the manifest's usable rows with their split) into the dataset; counts per split."""
    rows = [r for r in read_manifest(store) if r["status"] == "ok"]
    if not rows:
        raise DatasetError(f"{store.location}: the manifest has no usable clips")
    videos = {r["video_id"]: r["label"] for r in rows}
    return write_split(store, rows, assign_splits(videos, val, test, seed))


def write_split(store: DatasetStore, rows: list[dict[str, Any]], assignment: dict[str, str]) -> dict[str, int]:
    """``split.csv``: the rows, each with its video's split; videos per split."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "split": assignment[row["video_id"]]})
    store.put("split.csv", buffer.getvalue().encode())
    return {name: sum(1 for v in assignment.values() if v == name) for name in SPLITS}


def rows_from_split_file(store: DatasetStore, split_csv: str | Path) -> list[dict[str, Any]]:
    """The manifest's usable rows with the splits of an external file (``video,split`` per line, as the reference
    training script takes one): a video is named by its id (the path relative to the source) or its file name,
    with or without the extension. Videos the file does not name are left out."""
    path = Path(split_csv)
    if not path.is_file():
        raise DatasetError(f"split file not found: {path.name}")
    with open(path, newline="") as handle:
        lines = [row for row in csv.reader(handle) if row and "".join(row).strip()]
    if lines and [c.strip().lower() for c in lines[0][:2]] in (["video", "split"], ["path", "split"]):
        lines = lines[1:]
    wanted: dict[str, str] = {}
    for number, row in enumerate(lines, start=1):
        if len(row) < 2 or row[1].strip() not in SPLITS:
            raise DatasetError(f"{path.name}, row {number}: expected video,split with split one of {SPLITS}")
        wanted[row[0].strip()] = row[1].strip()
    rows = []
    for row in (r for r in read_manifest(store) if r["status"] == "ok"):
        name = PurePosixPath(row["video_id"])
        split = next((wanted[k] for k in (row["video_id"], name.name, name.stem) if k in wanted), None)
        if split:
            rows.append({**row, "split": split})
    if not rows:
        raise DatasetError(f"{path.name} names none of the dataset's videos")
    return rows


def load_split_rows(store: DatasetStore) -> list[dict[str, Any]]:
    """Rows with a split: ``split.csv`` if present, else the manifest when every usable row has one."""
    if store.exists("split.csv"):
        return read_manifest(store, "split.csv")
    rows = [r for r in read_manifest(store) if r["status"] == "ok"]
    if rows and all(r["split"] in SPLITS for r in rows):
        return rows
    raise DatasetError(f"{store.location} has no split yet: run `ftcn split {store.location}` first")


def keep_official_split(store: DatasetStore, val: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """``split.csv`` from the splits a standard dataset's own files gave (preprocess stored them in the manifest).

    The official split is kept as published. Where it has no validation videos (Celeb-DF and DFDC publish train and
    test only) a share ``val`` of the training videos becomes validation, by video and stratified by label, since
    the threshold is chosen on validation videos; videos the dataset puts in no split (FaceForensics++'s
    DeepFakeDetection) are split the same way. Returns the counts per split and what was carved."""
    rows = [r for r in read_manifest(store) if r["status"] == "ok"]
    if not rows:
        raise DatasetError(f"{store.location}: the manifest has no usable clips")
    official = {r["video_id"]: r["split"] for r in rows}
    labels = {r["video_id"]: r["label"] for r in rows}
    unsplit = {v: labels[v] for v, s in official.items() if s not in SPLITS}
    assignment = {v: s for v, s in official.items() if s in SPLITS}
    if unsplit:
        assignment.update(assign_splits(unsplit, val, 0.1, seed))
    carved = "val" not in assignment.values()
    if carved:
        training = {v: labels[v] for v, s in assignment.items() if s == "train"}
        assignment.update(assign_splits(training, val, 0.0, seed))
    counts = write_split(store, rows, assignment)
    return {"videos": counts, "val_from_train": carved, "unsplit_videos": len(unsplit)}
