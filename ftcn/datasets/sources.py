"""Where labelled videos come from: a folder with ``real/`` and ``fake/``, or a CSV manifest ``path,label[,split]``."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ftcn.errors import InvalidSource

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
LABELS = {"real": "real", "fake": "fake", "0": "real", "1": "fake", "pristine": "real", "manipulated": "fake"}


@dataclass(frozen=True)
class VideoEntry:
    video_id: str  # stable identity: the path relative to the source, as written
    path: Path
    label: str  # "real" | "fake"
    split: str = ""  # "", "train", "val" or "test"
    method: str = ""  # the forgery method of a fake, as its dataset names it (FaceSwap, Celeb-synthesis, ...)
    compression: str = ""  # the dataset's compression level (FaceForensics++: raw, c23, c40)


def video_key(video_id: str) -> str:
    """A storage-safe, collision-free key for a video id (slug plus a hash of the exact id)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id).strip("._")[-80:] or "video"
    return f"{slug}-{hashlib.sha1(video_id.encode()).hexdigest()[:10]}"


def parse_label(value: str, where: str) -> str:
    label = LABELS.get(value.strip().lower())
    if label is None:
        raise InvalidSource(f"{where}: label {value!r} is not one of real/fake/0/1")
    return label


def from_folder(root: Path) -> list[VideoEntry]:
    entries = []
    for label in ("real", "fake"):
        folder = root / label
        if not folder.is_dir():
            raise InvalidSource(f"{root} needs a {label}/ folder (a dataset folder holds real/ and fake/)")
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                entries.append(VideoEntry(path.relative_to(root).as_posix(), path, label))
    return entries


def from_manifest(manifest: Path) -> list[VideoEntry]:
    with open(manifest, newline="") as handle:
        rows = list(csv.reader(handle))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    entries, missing = [], []
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise InvalidSource(f"{manifest}, row {number}: expected path,label[,split]")
        path = Path(row[0].strip())
        resolved = path if path.is_absolute() else manifest.parent / path
        split = row[2].strip().lower() if len(row) > 2 else ""
        if split not in ("", "train", "val", "test"):
            raise InvalidSource(f"{manifest}, row {number}: split {split!r} is not train/val/test")
        if not resolved.is_file():
            missing.append(str(path))
        entries.append(VideoEntry(row[0].strip(), resolved, parse_label(row[1], f"{manifest}, row {number}"), split))
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise InvalidSource(f"{manifest} lists {len(missing)} missing videos: {shown}")
    return entries


def load_source(source: str | Path) -> list[VideoEntry]:
    """Entries of a folder or CSV manifest; fails early with a clear message (empty, missing files, bad labels)."""
    source = Path(source)
    if source.is_dir():
        entries = from_folder(source)
    elif source.is_file() and source.suffix.lower() in (".csv", ".txt"):
        entries = from_manifest(source)
    else:
        raise InvalidSource(f"{source} is neither a folder with real/ and fake/ nor a CSV manifest")
    if not entries:
        raise InvalidSource(f"{source} holds no videos")
    ids = [e.video_id for e in entries]
    if len(set(ids)) != len(ids):
        raise InvalidSource(f"{source} lists some videos twice")
    return entries
