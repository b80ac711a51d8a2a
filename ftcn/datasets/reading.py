"""What the standard datasets' readers share: the options a user picks, the description of a kind, and the checks
that name a missing or broken file relative to the dataset's root. ``ftcn.datasets.standard`` is the front door;
each reader (``ffpp``, ``celebdf``, ``dfdc``, ``deeperforensics``) imports only this module, so the registry can
import the readers without a loop."""

from __future__ import annotations

import json
from collections.abc import Callable
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
