"""bench/corpus_manifest.py rebuilds the real-footage corpus from clones at the commits its sources name."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from corpus_manifest import rebuild  # noqa: E402


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _sources(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["repository", "commit", "path", "label", "dataset", "label_source"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_videos_come_from_the_named_commit_and_a_missing_clone_is_named(tmp_path: Path) -> None:
    repo = tmp_path / "clones" / "someone" / "videos"
    (repo / "clips").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "clips" / "a.mp4").write_bytes(b"first version")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "clips" / "a.mp4").write_bytes(b"changed later")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "two")
    sources = _sources(tmp_path / "sources.csv", [
        {"repository": "someone/videos", "commit": commit, "path": "clips/a.mp4", "label": "fake",
         "dataset": "ff++-c40", "label_source": "layout"},
        {"repository": "nobody/absent", "commit": commit, "path": "b.mp4", "label": "real", "dataset": "x",
         "label_source": "layout"},
    ])
    written, missing = rebuild(sources, tmp_path / "clones", tmp_path / "out")
    assert (written, missing) == (1, {"nobody/absent"})
    rows = list(csv.DictReader(open(tmp_path / "out" / "manifest.csv")))
    assert [(r["label"], r["dataset"]) for r in rows] == [("fake", "ff++-c40")]
    assert (tmp_path / "out" / rows[0]["path"]).read_bytes() == b"first version"


def test_a_source_path_that_climbs_out_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "clones" / "someone" / "videos"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    sources = _sources(tmp_path / "sources.csv", [
        {"repository": "someone/videos", "commit": "HEAD", "path": "../../etc/passwd", "label": "real",
         "dataset": "x", "label_source": "-"}])
    with pytest.raises(SystemExit, match="outside the corpus"):
        rebuild(sources, tmp_path / "clones", tmp_path / "out")
