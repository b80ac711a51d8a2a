"""Safe extraction of uploaded dataset archives (zip or tar): no path traversal, no links, bounded size/count."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

#: Folder depth no real dataset needs; deeper paths are a nesting bomb (or a file-system attack).
MAX_DEPTH = 16
#: Expansion ratio above which a member is a decompression bomb (video compresses to ~1:1; zeros to 1:1000).
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 1 << 20  # tiny members may compress well; only ratios on sizeable members count


class UnsafeArchive(ValueError):
    """An archive the service refuses to extract, with the reason."""


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part == ".." for part in path.parts) or not path.parts:
        raise UnsafeArchive(f"the archive contains an unsafe path: {name!r}")
    if len(path.parts) > MAX_DEPTH:
        raise UnsafeArchive(f"the archive nests folders deeper than {MAX_DEPTH} levels")
    return path


def _check_zip_declarations(members: list[zipfile.ZipInfo], max_bytes: int) -> None:
    """Refuse a zip bomb from its central directory, before extracting anything (the streaming budget below
    still guards against directories that lie)."""
    declared = sum(member.file_size for member in members)
    if declared > max_bytes:
        raise UnsafeArchive(f"the archive declares {declared} bytes, beyond the size limit of {max_bytes}")
    for member in members:
        if member.file_size > RATIO_FLOOR_BYTES and member.file_size > MAX_RATIO * max(1, member.compress_size):
            raise UnsafeArchive(f"{member.filename!r} expands {member.file_size // max(1, member.compress_size)}x: "
                                "a compression bomb")


def _copy_bounded(source, target: Path, budget: list[int]) -> None:
    with open(target, "wb") as handle:
        while block := source.read(1 << 16):
            budget[0] -= len(block)
            if budget[0] < 0:
                raise UnsafeArchive("the archive expands beyond the size limit")
            handle.write(block)


def extract_archive(archive: Path, destination: Path, *, max_bytes: int, max_files: int) -> list[Path]:
    """Extract regular files only; raise :class:`UnsafeArchive` (and leave nothing behind) on any violation."""
    destination.mkdir(parents=True, exist_ok=True)
    budget = [max_bytes]
    written: list[Path] = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                members = bundle.infolist()
                if len(members) > max_files:
                    raise UnsafeArchive(f"the archive holds {len(members)} entries, more than {max_files}")
                _check_zip_declarations(members, max_bytes)
                for member in members:
                    name = _safe_name(member.filename)
                    if member.is_dir():
                        continue
                    if (member.external_attr >> 16) & 0o170000 == 0o120000:
                        raise UnsafeArchive(f"the archive contains a symbolic link: {member.filename!r}")
                    target = destination.joinpath(*name.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with bundle.open(member) as source:
                        _copy_bounded(source, target, budget)
                    written.append(target)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                count = 0
                for member in bundle:
                    count += 1
                    if count > max_files:
                        raise UnsafeArchive(f"the archive holds more than {max_files} entries")
                    name = _safe_name(member.name)
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise UnsafeArchive(f"the archive contains a link or special file: {member.name!r}")
                    target = destination.joinpath(*name.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = bundle.extractfile(member)
                    assert source is not None
                    _copy_bounded(source, target, budget)
                    written.append(target)
        else:
            raise UnsafeArchive("the upload is neither a zip nor a tar archive")
    except (UnsafeArchive, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        if isinstance(exc, UnsafeArchive):
            raise
        raise UnsafeArchive(f"the archive is corrupt ({exc})") from None
    return written
