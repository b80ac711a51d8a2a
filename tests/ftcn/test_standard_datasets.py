"""The standard datasets' readers on miniature trees in each dataset's exact layout: labels (Celeb-DF's inverted
convention included), FaceForensics++ pairs to videos, official splits, compression and method filters, and one-line
errors that name the file and what was expected."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ftcn.datasets.split import keep_official_split
from ftcn.datasets.standard import DatasetOptions, describe, find_root, read_dataset
from ftcn.datasets.storage import LocalStore
from ftcn.errors import InvalidSource
from tests.datasets import write_clip_dataset
from tests.standard_trees import celebdf_tree, dfdc_tree, dfo_tree, ffpp_tree, placeholder


@pytest.fixture()
def source(tmp_path: Path):
    return placeholder(tmp_path / "media")


def by_id(entries) -> dict:
    return {e.video_id: e for e in entries}


def test_ffpp_pairs_become_two_reals_and_two_fakes_per_method(tmp_path: Path, source) -> None:
    root = tmp_path / "FaceForensics++"
    pairs = ffpp_tree(root, source, methods=("Deepfakes", "FaceShifter"), compressions=("c23", "c40"))
    entries = read_dataset("ffpp", root, DatasetOptions(methods=("deepfakes", "FaceShifter")))
    got = by_id(entries)
    for split, listed in pairs.items():
        for a, b in listed:
            for real in (a, b):
                entry = got[f"original_sequences/youtube/c23/videos/{real}.mp4"]
                assert (entry.label, entry.split, entry.compression, entry.method) == ("real", split, "c23", "")
            for method in ("Deepfakes", "FaceShifter"):
                for fake in (f"{a}_{b}", f"{b}_{a}"):
                    entry = got[f"manipulated_sequences/{method}/c23/videos/{fake}.mp4"]
                    assert (entry.label, entry.split, entry.method) == ("fake", split, method)
                    assert entry.path == root / entry.video_id
    reals = sum(len(listed) * 2 for listed in pairs.values())
    assert len(entries) == reals * 3

    only_shifter_c40 = read_dataset("ffpp", root, DatasetOptions(compression="c40", methods=("FaceShifter",)))
    assert {e.method for e in only_shifter_c40 if e.label == "fake"} == {"FaceShifter"}
    assert all("/c40/" in e.video_id and e.compression == "c40" for e in only_shifter_c40)
    counts = describe(only_shifter_c40)
    assert counts["test"] == {"real": 2 * len(pairs["test"]), "fake": 2 * len(pairs["test"])}


def test_ffpp_errors_name_the_file_and_what_was_expected(tmp_path: Path, source) -> None:
    root = tmp_path / "ff"
    ffpp_tree(root, source, methods=("Deepfakes",))
    with pytest.raises(InvalidSource, match=r"manipulated_sequences/Face2Face/c23/videos/ is missing"):
        read_dataset("ffpp", root)  # the paper's four methods by default
    with pytest.raises(InvalidSource, match="unknown method 'DeepFakes2'"):
        read_dataset("ffpp", root, DatasetOptions(methods=("DeepFakes2",)))
    with pytest.raises(InvalidSource, match="compression 'c99'"):
        read_dataset("ffpp", root, DatasetOptions(compression="c99", methods=("Deepfakes",)))
    one = DatasetOptions(methods=("Deepfakes",))
    (root / "splits" / "val.json").unlink()
    with pytest.raises(InvalidSource, match=r"^FaceForensics\+\+: splits/val.json is missing \(the official split"):
        read_dataset("ffpp", root, one)
    (root / "splits" / "val.json").write_text('[["004", "005"], ["004"]]')
    with pytest.raises(InvalidSource, match=r"splits/val.json, pair 2 is \['004'\]; expected a JSON list of id pairs"):
        read_dataset("ffpp", root, one)
    (root / "splits" / "val.json").write_text("{not json")
    with pytest.raises(InvalidSource, match="splits/val.json is not valid JSON"):
        read_dataset("ffpp", root, one)
    (root / "splits" / "val.json").write_text('[["004", "005"], ["008", "009"]]')
    with pytest.raises(InvalidSource, match=r"4 videos listed by the official split files are not on disk, e\.g\. "
                                            r"original_sequences/youtube/c23/videos/008.mp4"):
        read_dataset("ffpp", root, one)
    (root / "splits" / "val.json").write_text('[["004", "005"], ["000", "009"]]')
    with pytest.raises(InvalidSource, match="video 000 is in two official splits"):
        read_dataset("ffpp", root, one)


def test_celebdf_reads_its_inverted_labels_and_refuses_them_flipped(tmp_path: Path, source) -> None:
    root = tmp_path / "Celeb-DF-v2"
    test, train = celebdf_tree(root, source)
    entries = by_id(read_dataset("celebdf", root))
    for label, name in test:  # Celeb-DF writes 1 for real, 0 for fake
        assert (entries[name].label, entries[name].split) == ("real" if label == "1" else "fake", "test")
    for name in train:
        assert entries[name].split == "train"
        assert entries[name].label == ("fake" if name.startswith("Celeb-synthesis") else "real")
    assert {e.method for e in entries.values() if e.label == "fake"} == {"Celeb-synthesis"}

    listing = root / "List_of_testing_videos.txt"
    lines = listing.read_text().splitlines()
    flipped = [("0" if line[0] == "1" else "1") + line[1:] for line in lines]
    listing.write_text("\n".join(flipped) + "\n")
    with pytest.raises(InvalidSource, match=r"line 1 labels Celeb-real/id0_0001.mp4 0 \(fake\), but Celeb-real/ "
                                            r"holds real videos \(Celeb-DF writes 1 for real and 0 for fake\)"):
        read_dataset("celebdf", root)
    listing.write_text(lines[0] + "\nthis is not a line\n")
    with pytest.raises(InvalidSource, match="List_of_testing_videos.txt, line 2 is 'this is not a line'"):
        read_dataset("celebdf", root)
    listing.unlink()
    with pytest.raises(InvalidSource, match="List_of_testing_videos.txt is missing"):
        read_dataset("celebdf", root)


def test_dfdc_training_parts_and_test_set(tmp_path: Path, source) -> None:
    root = tmp_path / "dfdc"
    described = dfdc_tree(root, source)
    entries = by_id(read_dataset("dfdc", root))
    assert {k: {"label": e.label, "split": e.split} for k, e in entries.items()} == described
    labels = root / "test" / "labels.csv"
    labels.write_text("filename,label\ntest1.mp4,FAKE\n")
    with pytest.raises(InvalidSource, match=r"test/labels.csv, line 2: expected filename,label with label 1"):
        read_dataset("dfdc", root)
    labels.write_text("name,fake\n")
    with pytest.raises(InvalidSource, match="must start with the header 'filename,label'"):
        read_dataset("dfdc", root)
    labels.unlink()
    metadata = root / "dfdc_train_part_0" / "metadata.json"
    metadata.write_text(json.dumps({"aaaa.mp4": {"label": "MAYBE"}}))
    with pytest.raises(InvalidSource, match="dfdc_train_part_0/metadata.json, video aaaa.mp4: label 'MAYBE'"):
        read_dataset("dfdc", root)
    metadata.unlink()
    with pytest.raises(InvalidSource, match="found no dfdc_train_part_\\*/metadata.json"):
        read_dataset("dfdc", root)


def test_dfdc_preview_set(tmp_path: Path, source) -> None:
    root = tmp_path / "preview"
    layout = {"method_A/1/1_A/v1.mp4": {"label": "fake", "set": "test"},
              "original_videos/1/v2.mp4": {"label": "real", "set": "test"},
              "method_B/2/2_B/v3.mp4": {"label": "fake", "set": "train"}}
    for name, facts in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(source(facts["label"]).read_bytes())
    (root / "dataset.json").write_text(json.dumps(layout))
    entries = by_id(read_dataset("dfdc", root))
    assert {k: (e.label, e.split, e.method) for k, e in entries.items()} == {
        k: (f["label"], f["set"], k.split("/")[0] if f["label"] == "fake" else "") for k, f in layout.items()}


def test_deeperforensics_takes_its_reals_from_ffpp(tmp_path: Path, source) -> None:
    ffpp_root, root = tmp_path / "ff", tmp_path / "DeeperForensics-1.0"
    ffpp_tree(ffpp_root, source, methods=())
    splits = dfo_tree(root, source)
    entries = read_dataset("dfo", root, DatasetOptions(ffpp_root=ffpp_root))
    for split, names in splits.items():
        fakes = sorted(e.video_id for e in entries if e.label == "fake" and e.split == split)
        assert fakes == sorted(f"manipulated_videos/end_to_end/{n}" for n in names)
        reals = sorted(e.path for e in entries if e.label == "real" and e.split == split)
        assert reals == sorted(ffpp_root / "original_sequences/youtube/c23/videos" / f"{n[:3]}.mp4" for n in names)
    with pytest.raises(InvalidSource, match="has no original_sequences/ \\(give FaceForensics\\+\\+'s folder with "
                                            "--ffpp-root\\)"):
        read_dataset("dfo", root)
    with pytest.raises(InvalidSource, match="manipulated_videos/reenact_postprocess/ is missing"):
        read_dataset("dfo", root, DatasetOptions(ffpp_root=ffpp_root, variant="reenact_postprocess"))
    (root / "lists" / "splits" / "test.txt").write_text("006_W104.mp4\nnot-a-video-name\n")
    with pytest.raises(InvalidSource, match="lists/splits/test.txt, line 2 is 'not-a-video-name'"):
        read_dataset("dfo", root, DatasetOptions(ffpp_root=ffpp_root))


def test_unknown_kind_and_archive_roots(tmp_path: Path, source) -> None:
    with pytest.raises(InvalidSource, match="unknown dataset 'kinetics'"):
        read_dataset("kinetics", tmp_path)
    celebdf_tree(tmp_path / "wrapper" / "Celeb-DF-v2", source)
    assert find_root("celebdf", tmp_path) == tmp_path / "wrapper" / "Celeb-DF-v2"
    with pytest.raises(InvalidSource, match="no original_sequences found"):
        find_root("ffpp", tmp_path)


def test_official_split_is_kept_and_validation_carved_only_where_missing(tmp_path: Path) -> None:
    videos = {f"r{i}": ("real", "train") for i in range(10)} | {f"f{i}": ("fake", "train") for i in range(10)}
    videos |= {"rt": ("real", "test"), "ft": ("fake", "test")}
    store = LocalStore(write_clip_dataset(tmp_path / "celebdf-like", videos, (8, 16, 3)))
    result = keep_official_split(store, val=0.2, seed=0)
    assert result["val_from_train"] and result["videos"] == {"train": 16, "val": 4, "test": 2}
    with open(tmp_path / "celebdf-like" / "split.csv", newline="") as handle:
        rows = {r["video_id"]: r["split"] for r in csv.DictReader(handle)}
    assert rows["rt"] == rows["ft"] == "test"
    assert {v for v, s in rows.items() if s == "val"} <= {v for v, (_, s) in videos.items() if s == "train"}

    with_val = videos | {"rv": ("real", "val"), "fv": ("fake", "val")}
    store = LocalStore(write_clip_dataset(tmp_path / "ffpp-like", with_val, (8, 16, 3)))
    result = keep_official_split(store, val=0.2)
    assert not result["val_from_train"] and result["videos"] == {"train": 20, "val": 2, "test": 2}
