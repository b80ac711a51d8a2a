"""The standard deepfake datasets read as they come on disk: one small module each, one front door here.

``read_dataset(kind, root, options)`` turns a downloaded dataset's folder into :class:`VideoEntry` rows (path,
label, official split, forgery method, compression), without copying a video. Every reader checks what it reads
and fails with one line naming the file (relative to the dataset's root, so a message never shows a server's
folder) and what it expected. Videos a split or label file names but that are not on disk are an error too: a
figure computed on part of a test set silently is the irreproducibility researchers complain about.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftcn.datasets import celebdf, deeperforensics, dfdc, ffpp
from ftcn.datasets.reading import DatasetKind, DatasetOptions
from ftcn.datasets.sources import VideoEntry
from ftcn.errors import InvalidSource

__all__ = ["DatasetOptions", "dataset_kinds", "dataset_title", "read_dataset", "find_root", "origin", "description",
           "describe"]


def _kinds() -> dict[str, DatasetKind]:
    return {kind.name: kind for kind in (ffpp.KIND, celebdf.KIND, dfdc.KIND, deeperforensics.KIND)}


def dataset_kinds() -> list[str]:
    return list(_kinds())


def dataset_title(kind: str) -> str:
    return _kind(kind).title


def _kind(kind: str) -> DatasetKind:
    kinds = _kinds()
    if kind not in kinds:
        raise InvalidSource(f"unknown dataset {kind!r}; one of {', '.join(kinds)}")
    return kinds[kind]


def read_dataset(kind: str, root: str | Path, options: DatasetOptions | None = None) -> list[VideoEntry]:
    """Every video of a standard dataset under ``root``, with its official split (``""`` where it has none)."""
    described = _kind(kind)
    root = Path(root)
    if not root.is_dir():
        raise InvalidSource(f"{described.title}: {root} is not a folder")
    entries = described.read(root, options or DatasetOptions())
    if not entries:
        raise InvalidSource(f"{described.title}: no videos found under the dataset's folder")
    ids = [entry.video_id for entry in entries]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidSource(f"{described.title}: the same video is listed twice: {', '.join(repeated[:3])}")
    return entries


def find_root(kind: str, folder: Path) -> Path:
    """The dataset's root inside ``folder`` (an archive often wraps everything in a folder or two)."""
    marker = _kind(kind).marker
    if not marker:
        return folder
    for candidate in (folder, *sorted(p for p in folder.glob("*") if p.is_dir()),
                      *sorted(p for p in folder.glob("*/*") if p.is_dir())):
        if (candidate / marker).exists():
            return candidate
    raise InvalidSource(f"{_kind(kind).title}: no {marker} found at the top of the dataset (up to two folders deep)")


def origin(kind: str, entries: list[VideoEntry]) -> dict[str, Any]:
    """What a model trained on these videos was trained on, for its card."""
    title = _kind(kind).title
    methods = sorted({e.method for e in entries if e.label == "fake" and e.method})
    compressions = sorted({e.compression for e in entries if e.compression})
    name = " ".join([title, *compressions]) + (f" ({', '.join(methods)})" if methods else "") + ", official split"
    return {"synthetic": False, "name": name, "dataset": kind, "methods": methods}


def description(kind: str, options: DatasetOptions, entries: list[VideoEntry]) -> dict[str, Any]:
    """``dataset.json`` of a preprocessed standard dataset: which dataset, which part, how many videos where."""
    return {"kind": kind, "title": _kind(kind).title, "compression": options.compression,
            "methods": sorted({e.method for e in entries if e.label == "fake" and e.method}),
            "variant": options.variant if kind == "dfo" else None, "videos": describe(entries)}


def describe(entries: Iterable[VideoEntry]) -> dict[str, dict[str, int]]:
    """Counts per split and label, e.g. ``{"test": {"real": 140, "fake": 560}}`` (``""`` is no split)."""
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        per_label = counts.setdefault(entry.split, {"real": 0, "fake": 0})
        per_label[entry.label] += 1
    return counts
