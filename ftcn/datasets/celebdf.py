"""Celeb-DF v1 and v2 (Li et al., CVPR 2020) as they are unpacked.

    Celeb-real/id0_0000.mp4          real interviews of celebrities
    YouTube-real/00000.mp4           more real videos
    Celeb-synthesis/id0_id1_0000.mp4 the face swaps
    List_of_testing_videos.txt       ``<label> <folder>/<file>.mp4`` per line

In the test list **1 means real and 0 means fake**, the reverse of most code (and of ours): the label is read from
the list and checked against the folder, so a flipped convention is caught instead of inverting every AUC. The
listed videos are the test split (518 in v2); every other video on disk is training data.
"""

from __future__ import annotations

from pathlib import Path

from ftcn.datasets.reading import DatasetKind, DatasetOptions, check_present, entry, relative, require_file
from ftcn.datasets.sources import VideoEntry
from ftcn.errors import InvalidSource

TITLE = "Celeb-DF"
REAL_FOLDERS = ("Celeb-real", "YouTube-real")
FAKE_FOLDER = "Celeb-synthesis"
TEST_LIST = "List_of_testing_videos.txt"
LIST_LABELS = {"1": "real", "0": "fake"}  # Celeb-DF's own convention
LINE_FORMAT = "'<1 real | 0 fake> <folder>/<file>.mp4'"


def label_of_folder(name: str) -> str | None:
    return "real" if name in REAL_FOLDERS else "fake" if name == FAKE_FOLDER else None


def read_test_list(root: Path) -> dict[str, str]:
    """``folder/file.mp4`` -> label, from the official test list."""
    path = require_file(root, root / TEST_LIST, TITLE, f"the official test list, lines of {LINE_FORMAT}")
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        folder = parts[1].split("/")[0] if len(parts) == 2 else ""
        if len(parts) != 2 or parts[0] not in LIST_LABELS or label_of_folder(folder) is None:
            raise InvalidSource(f"{TITLE}: {TEST_LIST}, line {number} is {line.strip()[:60]!r}; expected "
                                f"{LINE_FORMAT} with a folder of {', '.join(REAL_FOLDERS + (FAKE_FOLDER,))}")
        label = LIST_LABELS[parts[0]]
        if label != label_of_folder(folder):
            raise InvalidSource(f"{TITLE}: {TEST_LIST}, line {number} labels {parts[1]} {parts[0]} "
                                f"({label}), but {folder}/ holds {label_of_folder(folder)} videos "
                                "(Celeb-DF writes 1 for real and 0 for fake)")
        listed[parts[1]] = label
    if not listed:
        raise InvalidSource(f"{TITLE}: {TEST_LIST} lists no videos")
    return listed


def read(root: Path, options: DatasetOptions) -> list[VideoEntry]:
    listed = read_test_list(root)
    folders = [root / name for name in REAL_FOLDERS + (FAKE_FOLDER,) if (root / name).is_dir()]
    if not any(f.name == FAKE_FOLDER for f in folders) or len(folders) < 2:
        raise InvalidSource(f"{TITLE}: expected Celeb-real/, YouTube-real/ and Celeb-synthesis/ beside {TEST_LIST}")
    method = {"real": "", "fake": FAKE_FOLDER}
    entries = [entry(root, root / name, label, "test", method[label]) for name, label in sorted(listed.items())]
    for folder in folders:
        label = label_of_folder(folder.name)
        entries += [entry(root, path, label, "train", method[label]) for path in sorted(folder.glob("*.mp4"))
                    if relative(root, path) not in listed]
    return check_present(root, entries, TITLE, TEST_LIST)


KIND = DatasetKind("celebdf", TITLE, read, TEST_LIST)
