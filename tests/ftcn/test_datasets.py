"""Synthetic data, sources, preprocessing (resumable, failures recorded) and splits by video."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ftcn.cli import main
from ftcn.datasets.sources import InvalidSource, load_source, video_key
from ftcn.datasets.split import assign_splits, read_manifest, split_dataset
from ftcn.datasets.storage import LocalStore, open_store
from ftcn.synth.generate import plan, render


def test_synth_is_deterministic_and_pairs_fakes_with_real_twins() -> None:
    specs = plan(6, seed=3, frames=12)
    assert [s.label for s in specs] == ["real", "fake"] * 3
    for real, fake in zip(specs[::2], specs[1::2]):
        assert (real.source, real.seed) == (fake.source, fake.seed) and "jitter" in fake.artifacts
    first, again = render(specs[1]), render(specs[1])
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    real = render(specs[0])
    assert not all(np.array_equal(a, b) for a, b in zip(real, first)), "a fake must differ from its twin"


def test_folder_and_csv_sources(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    with pytest.raises(InvalidSource, match="fake/"):
        load_source(tmp_path)
    (tmp_path / "fake").mkdir()
    with pytest.raises(InvalidSource, match="no videos"):
        load_source(tmp_path)
    (tmp_path / "real" / "a.mp4").write_bytes(b"x")
    (tmp_path / "fake" / "sub").mkdir()
    (tmp_path / "fake" / "sub" / "b.MOV").write_bytes(b"x")
    (tmp_path / "fake" / "notes.txt").write_text("not a video")
    entries = load_source(tmp_path)
    assert [(e.video_id, e.label) for e in entries] == [("real/a.mp4", "real"), ("fake/sub/b.MOV", "fake")]

    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,split\nreal/a.mp4,0,train\nfake/sub/b.MOV,1,test\n")
    assert [(e.label, e.split) for e in load_source(manifest)] == [("real", "train"), ("fake", "test")]
    manifest.write_text("real/a.mp4,real\nmissing/c.mp4,fake\n")
    with pytest.raises(InvalidSource, match="1 missing videos: missing/c.mp4"):
        load_source(manifest)
    manifest.write_text("real/a.mp4,maybe\n")
    with pytest.raises(InvalidSource, match="label 'maybe'"):
        load_source(manifest)


def test_video_keys_do_not_collide() -> None:
    assert video_key("real/a b.mp4") != video_key("real/a_b.mp4")
    assert "/" not in video_key("x/../../etc/passwd")


def test_split_is_by_video_and_stratified() -> None:
    videos = {f"v{i:02d}": ("fake" if i % 3 else "real") for i in range(30)}
    assignment = assign_splits(videos, val=0.2, test=0.1, seed=5)
    assert set(assignment) == set(videos)
    for label in ("real", "fake"):
        splits = [assignment[v] for v, lab in videos.items() if lab == label]
        assert {"train", "val", "test"} <= set(splits)
    assert assign_splits(videos, 0.2, 0.1, seed=5) == assignment
    assert assign_splits(videos, 0.2, 0.1, seed=6) != assignment
    with pytest.raises(ValueError):
        assign_splits(videos, 0.6, 0.5, seed=0)


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", str(out), "--videos", "4", "--seed", "11", "--frames", "24"]) == 0
    return out


def test_preprocess_is_resumable_and_records_failures(tmp_path: Path, synth_set: Path, capsys) -> None:
    source = tmp_path / "source"
    for label in ("real", "fake"):
        (source / label).mkdir(parents=True)
        for video in (synth_set / label).glob("*.mp4"):
            (source / label / video.name).write_bytes(video.read_bytes())
    (source / "real" / "broken.mp4").write_text("not a video at all")
    out = tmp_path / "dataset"
    args = ["preprocess", str(source), str(out), "--max-clips", "3"]
    assert main(args) == 0
    assert "5 videos: 5 processed, 0 already done, 1 failed" in capsys.readouterr().out
    rows = read_manifest(LocalStore(out))
    failed = [r for r in rows if r["status"] == "failed"]
    assert [r["video_id"] for r in failed] == ["real/broken.mp4"] and "not a readable video" in failed[0]["reason"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and all(int(r["index"]) < 3 for r in ok)
    clips = np.load(out / ok[0]["path"])["clips"]
    assert clips.dtype == np.uint8 and clips.shape[1:] == (8, 64, 64, 3)

    assert main(args) == 0
    assert "0 processed, 5 already done" in capsys.readouterr().out
    # a half-written video (clips but no record) and a changed source are redone; others are skipped
    record = out / "records" / f"{video_key('fake/fake_0000.mp4')}.json"
    record.unlink()
    changed = source / "real" / "real_0000.mp4"
    changed.write_bytes(changed.read_bytes() + b"\0")
    assert main(args) == 0
    assert "2 processed, 3 already done" in capsys.readouterr().out
    assert json.loads(record.read_text())["status"] == "ok"


def test_split_command_writes_a_split_file(tmp_path: Path, synth_set: Path) -> None:
    out = tmp_path / "dataset"
    assert main(["preprocess", str(synth_set), str(out), "--max-clips", "2"]) == 0
    assert main(["split", str(out / "manifest.csv"), "--val", "0.5", "--test", "0", "--seed", "1"]) == 0
    with open(out / "split.csv") as handle:
        rows = list(csv.DictReader(handle))
    per_video = {}
    for row in rows:
        per_video.setdefault(row["video_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in per_video.values()), "clips of one video must share one split"
    assert {next(iter(s)) for s in per_video.values()} == {"train", "val"}
    assert split_dataset(open_store(out), 0.5, 0.0, 1) == {"train": 2, "val": 2, "test": 0}
