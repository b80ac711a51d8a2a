"""Uploaded archives: regular files extracted; traversal, links, bombs and garbage refused, nothing left behind."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from jobs.archives import UnsafeArchive, extract_archive


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return path


def make_tar_link(path: Path, kind: bytes, target: str) -> Path:
    """A tar whose only member, real/a.mp4, is a link (symbolic or hard) to ``target``."""
    with tarfile.open(path, "w") as bundle:
        info = tarfile.TarInfo("real/a.mp4")
        info.type, info.linkname = kind, target
        bundle.addfile(info)
    return path


def test_zip_and_tar_extract(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "d.zip", {"real/a.mp4": b"a", "fake/b.mp4": b"bb"})
    files = extract_archive(archive, tmp_path / "out", max_bytes=100, max_files=10)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == ["fake/b.mp4", "real/a.mp4"]
    tar_path = tmp_path / "d.tar.gz"
    with tarfile.open(tar_path, "w:gz") as bundle:
        info = tarfile.TarInfo("real/c.mp4")
        info.size = 3
        bundle.addfile(info, io.BytesIO(b"ccc"))
    assert extract_archive(tar_path, tmp_path / "out2", max_bytes=100, max_files=10)[0].read_bytes() == b"ccc"


@pytest.mark.parametrize("name", ["../evil.mp4", "real/../../evil.mp4", "/etc/evil", "..\\evil.mp4"])
def test_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "t.zip", {"real/ok.mp4": b"ok", name: b"x"})
    with pytest.raises(UnsafeArchive, match="unsafe path"):
        extract_archive(archive, tmp_path / "out", max_bytes=100, max_files=10)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.mp4").exists()


def test_links_bombs_and_garbage_are_refused(tmp_path: Path) -> None:
    tar_path = make_tar_link(tmp_path / "link.tar", tarfile.SYMTYPE, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="link"):
        extract_archive(tar_path, tmp_path / "o1", max_bytes=100, max_files=10)
    bomb = make_zip(tmp_path / "bomb.zip", {"real/a.mp4": b"\0" * 10_000})
    with pytest.raises(UnsafeArchive, match="size limit"):
        extract_archive(bomb, tmp_path / "o2", max_bytes=1000, max_files=10)
    many = make_zip(tmp_path / "many.zip", {f"real/{i}.mp4": b"x" for i in range(20)})
    with pytest.raises(UnsafeArchive, match="more than 10"):
        extract_archive(many, tmp_path / "o3", max_bytes=1000, max_files=10)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnsafeArchive):
        extract_archive(garbage, tmp_path / "o4", max_bytes=1000, max_files=10)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_nesting_ratio_and_hard_link_bombs_are_refused(tmp_path: Path) -> None:
    deep = make_zip(tmp_path / "deep.zip", {"/".join(["d"] * 40) + "/a.mp4": b"x"})
    with pytest.raises(UnsafeArchive, match="deeper than"):
        extract_archive(deep, tmp_path / "o1", max_bytes=10**9, max_files=10)
    ratio = tmp_path / "ratio.zip"
    with zipfile.ZipFile(ratio, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("real/zeros.mp4", b"\0" * (20 << 20))
    assert ratio.stat().st_size < 100_000
    with pytest.raises(UnsafeArchive, match="compression bomb"):
        extract_archive(ratio, tmp_path / "o2", max_bytes=10**9, max_files=10)
    with pytest.raises(UnsafeArchive, match="declares"):  # refused from the directory, before extracting
        extract_archive(ratio, tmp_path / "o3", max_bytes=1 << 20, max_files=10)
    hard = make_tar_link(tmp_path / "hard.tar", tarfile.LNKTYPE, "/etc/shadow")
    with pytest.raises(UnsafeArchive, match="link"):
        extract_archive(hard, tmp_path / "o4", max_bytes=1000, max_files=10)
    gz_bomb = tmp_path / "bomb.tar.gz"  # tar.gz has no central directory: the streaming budget stops it
    with tarfile.open(gz_bomb, "w:gz") as bundle:
        data = b"\0" * (8 << 20)
        info = tarfile.TarInfo("real/zeros.mp4")
        info.size = len(data)
        bundle.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafeArchive, match="size limit"):
        extract_archive(gz_bomb, tmp_path / "o5", max_bytes=1 << 20, max_files=10)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))
