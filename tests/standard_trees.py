"""Miniature copies of the standard datasets' folders: a handful of videos under the real names, and the real
split and label files' formats. Each builder returns what it wrote, so tests compare readers against it."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

#: Gives the file to place at a path, by label ("real" or "fake").
VideoSource = Callable[[str], Path]


def placeholder(tmp: Path) -> VideoSource:
    """A few bytes per video: enough for readers, which never decode."""
    files = {}
    for label in ("real", "fake"):
        files[label] = tmp / f"placeholder-{label}.mp4"
        files[label].parent.mkdir(parents=True, exist_ok=True)
        files[label].write_bytes(label.encode())
    return files.__getitem__


def _put(source: VideoSource, label: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source(label), path)
    return path


FFPP_PAIRS = {"train": [["000", "001"], ["002", "003"]], "val": [["004", "005"]], "test": [["006", "007"]]}


def ffpp_tree(root: Path, source: VideoSource, pairs: dict[str, list[list[str]]] | None = None,
              methods: tuple[str, ...] = ("Deepfakes", "FaceSwap", "FaceShifter"),
              compressions: tuple[str, ...] = ("c23",)) -> dict[str, list[list[str]]]:
    pairs = pairs or FFPP_PAIRS
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for split, listed in pairs.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(listed))
    for comp in compressions:
        for listed in pairs.values():
            for a, b in listed:
                for real in (a, b):
                    _put(source, "real", root / "original_sequences" / "youtube" / comp / "videos" / f"{real}.mp4")
                for method in methods:
                    for fake in (f"{a}_{b}", f"{b}_{a}"):
                        _put(source, "fake", root / "manipulated_sequences" / method / comp / "videos" / f"{fake}.mp4")
    return pairs


CELEBDF_TEST = [("1", "Celeb-real/id0_0001.mp4"), ("1", "YouTube-real/00001.mp4"),
                ("0", "Celeb-synthesis/id0_id1_0001.mp4"), ("0", "Celeb-synthesis/id1_id0_0001.mp4")]
CELEBDF_TRAIN = ["Celeb-real/id0_0000.mp4", "YouTube-real/00000.mp4", "Celeb-synthesis/id0_id1_0000.mp4",
                 "Celeb-synthesis/id1_id0_0000.mp4"]


def celebdf_tree(root: Path, source: VideoSource) -> tuple[list[tuple[str, str]], list[str]]:
    """The test list uses Celeb-DF's own convention: 1 = real, 0 = fake."""
    for label, name in CELEBDF_TEST:
        _put(source, "real" if label == "1" else "fake", root / name)
    for name in CELEBDF_TRAIN:
        _put(source, "fake" if name.startswith("Celeb-synthesis") else "real", root / name)
    (root / "List_of_testing_videos.txt").write_text("".join(f"{label} {name}\n" for label, name in CELEBDF_TEST))
    return CELEBDF_TEST, CELEBDF_TRAIN


def dfdc_tree(root: Path, source: VideoSource) -> dict[str, dict[str, str]]:
    """A training part (metadata.json) and the test set (labels.csv, 1 = fake); returns name -> facts."""
    part = root / "dfdc_train_part_0"
    metadata = {"aaaa.mp4": {"label": "REAL", "split": "train", "original": None},
                "bbbb.mp4": {"label": "FAKE", "split": "train", "original": "aaaa.mp4"},
                "cccc.mp4": {"label": "REAL", "split": "train", "original": None},
                "dddd.mp4": {"label": "FAKE", "split": "train", "original": "cccc.mp4"}}
    for name, facts in metadata.items():
        _put(source, facts["label"].lower(), part / name)
    (part / "metadata.json").write_text(json.dumps(metadata))
    test = {"test1.mp4": "0", "test2.mp4": "1", "test3.mp4": "1", "test4.mp4": "0"}
    for name, label in test.items():
        _put(source, "fake" if label == "1" else "real", root / "test" / "videos" / name)
    with open(root / "test" / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(test.items())
    described = {f"dfdc_train_part_0/{n}": {"label": f["label"].lower(), "split": "train"}
                 for n, f in metadata.items()}
    described.update({f"test/videos/{n}": {"label": "fake" if v == "1" else "real", "split": "test"}
                      for n, v in test.items()})
    return described


DFO_SPLITS = {"train": ["000_M101.mp4", "002_W102.mp4"], "val": ["004_M103.mp4"], "test": ["006_W104.mp4",
                                                                                        "007_M105.mp4"]}


def dfo_tree(root: Path, source: VideoSource, variant: str = "end_to_end",
             splits: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Fakes only, named after the FaceForensics++ target they were swapped into (its reals come from there)."""
    splits = splits or DFO_SPLITS
    (root / "lists" / "splits").mkdir(parents=True, exist_ok=True)
    for split, names in splits.items():
        (root / "lists" / "splits" / f"{split}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            _put(source, "fake", root / "manipulated_videos" / variant / name)
    return splits
