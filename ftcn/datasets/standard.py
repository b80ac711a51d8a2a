"""The standard deepfake datasets read as they come on disk: one small module each, one front door here.

``read_dataset(kind, root, options)`` turns a downloaded dataset's folder into :class:`VideoEntry` rows (path,
label, official split, forgery method, compression), without copying a video. Every reader checks what it reads
and fails with one line naming the file (relative to the dataset's root, so a message never shows a server's
folder) and what it expected. Videos a split or label file names but that are not on disk are an error too: a
figure computed on part of a test set silently is the irreproducibility researchers complain about.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcn.datasets.sources import VideoEntry
from ftcn.errors import InvalidSource


@dataclass(frozen=True)
class DatasetOptions:
    """What to take from a dataset. Each reader uses the fields that mean something for it."""

    compression: str = "c23"  # FaceForensics++ (and DeeperForensics' reals): raw, c23 or c40
    methods: tuple[str, ...] = ()  # FaceForensics++ manipulations; empty: the four the paper trains on
    ffpp_root: Path | None = None  # DeeperForensics: where FaceForensics++ is (its reals); default: the root
    variant: str = "end_to_end"  # DeeperForensics: the manipulated_videos/<variant> folder
    splits_dir: Path | None = None  # FaceForensics++: the folder of train/val/test.json; default ROOT/splits


@dataclass(frozen=True)
class DatasetKind:
    name: str  # the --dataset value
    title: str  # how papers name it
    read: Callable[[Path, DatasetOptions], list[VideoEntry]]
    marker: str  # a file or folder name at the dataset's root, to find it inside an unpacked archive ("": any)


def _kinds() -> dict[str, DatasetKind]:
    from ftcn.datasets import celebdf, deeperforensics, dfdc, ffpp

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


# -- helpers the readers share ---------------------------------------------------------------------------------

def relative(root: Path, path: Path) -> str:
    """A path as the user's dataset names it (never the folder it sits in on this machine)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def require_file(root: Path, path: Path, title: str, expected: str) -> Path:
    if not path.is_file():
        raise InvalidSource(f"{title}: {relative(root, path)} is missing ({expected})")
    return path


def require_folder(root: Path, path: Path, title: str, expected: str) -> Path:
    if not path.is_dir():
        raise InvalidSource(f"{title}: {relative(root, path)}/ is missing ({expected})")
    return path


def load_json(root: Path, path: Path, title: str, expected: str) -> Any:
    require_file(root, path, title, expected)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSource(f"{title}: {relative(root, path)} is not valid JSON ({exc.__class__.__name__}); "
                            f"expected {expected}") from None


def check_present(root: Path, entries: list[VideoEntry], title: str, listed_by: str) -> list[VideoEntry]:
    """Every entry's file must exist: a test set read in part gives figures nobody can compare."""
    missing = [entry for entry in entries if not entry.path.is_file()]
    if missing:
        shown = ", ".join(e.video_id for e in missing[:3])
        raise InvalidSource(f"{title}: {len(missing)} videos listed by {listed_by} are not on disk, e.g. {shown}")
    return entries


def entry(root: Path, path: Path, label: str, split: str, method: str = "", compression: str = "") -> VideoEntry:
    return VideoEntry(relative(root, path), path, label, split, method, compression)
