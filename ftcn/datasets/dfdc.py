"""The DeepFake Detection Challenge dataset (Dolhansky et al., 2020) in any of its three published forms.

    dfdc_train_part_N/metadata.json  {"x.mp4": {"label": "FAKE", "split": "train", "original": "y.mp4"}, ...}
    labels.csv (the public test set) ``filename,label`` with 1 = fake; videos beside it or in its videos/ folder
    dataset.json (the preview set)   {"method_A/.../v.mp4": {"label": "fake", "set": "test"}, ...}

A root may hold several (the training parts beside the test set); each is found up to two folders deep. Training
parts carry the split their metadata names, the test set is ``test``, the preview set its own ``set``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ftcn.datasets.reading import DatasetKind, DatasetOptions, check_present, entry, load_json, relative
from ftcn.datasets.sources import VideoEntry
from ftcn.errors import InvalidSource

TITLE = "DFDC"
METADATA_FORMAT = '{"x.mp4": {"label": "REAL" or "FAKE", "split": "train", ...}}'
PREVIEW_FORMAT = '{"path.mp4": {"label": "real" or "fake", "set": "train" or "test"}}'
SPLITS = ("train", "val", "test")


def _found(root: Path, name: str) -> list[Path]:
    return sorted({*root.glob(name), *root.glob(f"*/{name}"), *root.glob(f"*/*/{name}")})


def _label(value: object, root: Path, path: Path, video: str) -> str:
    label = str(value).strip().lower()
    if label not in ("real", "fake"):
        raise InvalidSource(f"{TITLE}: {relative(root, path)}, video {video}: label {value!r} is not REAL or FAKE")
    return label


def _described(root: Path, path: Path, expected: str, split_key: str) -> list[tuple[str, str, str]]:
    """(video name, label, split) of a JSON file mapping video names to their facts (metadata.json, dataset.json)."""
    described = load_json(root, path, TITLE, expected)
    if not isinstance(described, dict):
        raise InvalidSource(f"{TITLE}: {relative(root, path)} is not {expected}")
    videos = []
    for name, facts in sorted(described.items()):
        if not isinstance(facts, dict) or "label" not in facts:
            raise InvalidSource(f"{TITLE}: {relative(root, path)}, video {name}: expected {expected}")
        split = str(facts.get(split_key, "train")).lower()
        videos.append((name, _label(facts["label"], root, path, name), split if split in SPLITS else "train"))
    return videos


def training_parts(root: Path, metadata: Path) -> list[VideoEntry]:
    return [entry(root, metadata.parent / name, label, split, "dfdc" if label == "fake" else "")
            for name, label, split in _described(root, metadata, METADATA_FORMAT, "split")]


def test_set(root: Path, labels: Path) -> list[VideoEntry]:
    folder = labels.parent / "videos" if (labels.parent / "videos").is_dir() else labels.parent
    with open(labels, newline="", encoding="utf-8", errors="replace") as handle:
        rows = [row for row in csv.reader(handle) if row and "".join(row).strip()]
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["filename", "label"]:
        raise InvalidSource(f"{TITLE}: {relative(root, labels)} must start with the header 'filename,label'")
    entries = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or row[1].strip() not in ("0", "1"):
            raise InvalidSource(f"{TITLE}: {relative(root, labels)}, line {number}: expected filename,label "
                                "with label 1 (fake) or 0 (real)")
        label = "fake" if row[1].strip() == "1" else "real"
        entries.append(entry(root, folder / row[0].strip(), label, "test", "dfdc" if label == "fake" else ""))
    return entries


def preview_set(root: Path, described_at: Path) -> list[VideoEntry]:
    """The preview set names each fake's method by its first folder (method_A, method_B)."""
    return [entry(root, described_at.parent / name, label, split, name.split("/")[0] if label == "fake" else "")
            for name, label, split in _described(root, described_at, PREVIEW_FORMAT, "set")]


def read(root: Path, options: DatasetOptions) -> list[VideoEntry]:
    entries: list[VideoEntry] = []
    for metadata in _found(root, "metadata.json"):
        entries += training_parts(root, metadata)
    for labels in _found(root, "labels.csv"):
        entries += test_set(root, labels)
    for described in _found(root, "dataset.json"):
        entries += preview_set(root, described)
    if not entries:
        raise InvalidSource(f"{TITLE}: found no dfdc_train_part_*/metadata.json, test labels.csv or preview "
                            "dataset.json under the dataset's folder")
    return check_present(root, entries, TITLE, "its metadata.json, labels.csv or dataset.json")


KIND = DatasetKind("dfdc", TITLE, read, "")  # no one marker: read() looks two folders deep itself
