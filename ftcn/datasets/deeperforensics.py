"""DeeperForensics-1.0 (Jiang et al., CVPR 2020) as it is unpacked, with its reals taken from FaceForensics++.

    manipulated_videos/<variant>/000_M101.mp4   FaceForensics++ video 000's face swapped for actor M101's
    lists/splits/{train,val,test}.txt          one video file name per line

The dataset ships fakes only: its real videos are the FaceForensics++ originals it swapped faces into, so the
reader needs FaceForensics++ (``--ffpp-root``; by default the same root, for a tree that holds both). A split's
reals are the originals whose ids its fakes name. ``end_to_end`` is the standard variant (the paper's DFo column);
``--variant`` names another folder of ``manipulated_videos/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ftcn.datasets import ffpp
from ftcn.datasets.reading import (
    DatasetKind,
    DatasetOptions,
    check_present,
    entry,
    relative,
    require_file,
    require_folder,
)
from ftcn.datasets.sources import VideoEntry
from ftcn.errors import InvalidSource

TITLE = "DeeperForensics-1.0"
SPLITS = ("train", "val", "test")
NAME = re.compile(r"^(?:.*/)?(\d{3})_[A-Za-z0-9]+\.mp4$")
LINE_FORMAT = "one video file name per line, such as 000_M101.mp4"


def read_split_list(root: Path, path: Path) -> list[tuple[str, str]]:
    """(file name, FaceForensics++ id) of every line."""
    require_file(root, path, TITLE, f"the official split, {LINE_FORMAT}")
    listed = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        match = NAME.match(name)
        if not match:
            raise InvalidSource(f"{TITLE}: {relative(root, path)}, line {number} is {name[:60]!r}; expected "
                                f"{LINE_FORMAT}")
        listed.append((name.split("/")[-1], match.group(1)))
    return listed


def ffpp_root(root: Path, options: DatasetOptions) -> Path:
    chosen = options.ffpp_root or root
    if not (chosen / "original_sequences").is_dir():
        where = "the folder given as --ffpp-root" if options.ffpp_root else "the dataset's folder"
        raise InvalidSource(f"{TITLE}: its real videos are FaceForensics++'s originals, and {where} has no "
                            "original_sequences/ (give FaceForensics++'s folder with --ffpp-root)")
    return chosen


def read(root: Path, options: DatasetOptions) -> list[VideoEntry]:
    variant = require_folder(root, root / "manipulated_videos" / options.variant, TITLE,
                             f"the {options.variant} fakes; choose another with --variant")
    reals_root = ffpp_root(root, options)
    originals = require_folder(reals_root, ffpp.originals(reals_root, options.compression), ffpp.TITLE,
                               f"the real videos at compression {options.compression}, used by {TITLE}")
    entries: list[VideoEntry] = []
    real_split: dict[str, str] = {}
    for split in SPLITS:
        for name, source_id in read_split_list(root, root / "lists" / "splits" / f"{split}.txt"):
            entries.append(entry(root, variant / name, "fake", split, options.variant))
            if real_split.setdefault(source_id, split) != split:
                raise InvalidSource(f"{TITLE}: FaceForensics++ video {source_id} has fakes in two splits "
                                    f"({real_split[source_id]} and {split})")
    for source_id, split in sorted(real_split.items()):
        path = originals / f"{source_id}.mp4"
        entries.append(VideoEntry(f"FaceForensics++/{relative(reals_root, path)}", path, "real", split, "",
                                  options.compression))
    return check_present(root, entries, TITLE, "lists/splits/*.txt")


KIND = DatasetKind("dfo", TITLE, read, "manipulated_videos")
