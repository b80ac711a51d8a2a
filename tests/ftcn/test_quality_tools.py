"""Measuring detection quality: face-swap fakes that really carry another identity, `ftcn predict` on many labelled
videos (resumable after an interruption, a failing video recorded, the AUC reported), the per-method report, and
model cards from checkpoints and registration."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ftcn.cards import DEMONSTRATION, card_from_checkpoint, card_line
from ftcn.checkpoints import load_checkpoint, save_checkpoint
from ftcn.cli import main as ftcn
from ftcn.models import build_model, tiny_config
from ftcn.predict.batch import video_report
from ftcn.synth import generate
from ftcn.synth.faceswap import triangles_of, warp_face
from ftcn.synth.generate import _detector, plan, render, source_face, swap_identity

ROOT = Path(__file__).resolve().parents[2]


def test_a_face_swap_fake_carries_another_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the face, every frame of the fake is far from its real twin (same footage, camera and noise) and
    close to the other identity warped onto that frame's landmarks: the generator cannot quietly become a copy.
    (The fit noise is set to zero so that the warp can be redone exactly here; it only moves the same face.)"""
    monkeypatch.setattr(generate, "FIT_NOISE", 0.0)
    real_spec, fake_spec = plan(2, 5, 12, ("faceswap",))
    real, fake = render(real_spec), render(fake_spec)
    source = source_face(swap_identity(fake_spec))
    assert source.name == "astronaut" and real_spec.source == "talking_face"
    for index in (0, 5, 11):
        landmarks = _detector().detect(real[index])[0].landmarks68
        inside = np.zeros(real[index].shape[:2], np.uint8)
        cv2.fillConvexPoly(inside, cv2.convexHull(np.round(landmarks[17:]).astype(np.int32)), 1)
        core = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0  # away from the feathered border
        warped = warp_face(source, landmarks, real[index].shape[:2], triangles_of(source))
        from_original = np.abs(fake[index].astype(float) - real[index])[core].mean()
        structure = lambda image: cv2.Laplacian(cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8),  # noqa: E731
                                                             cv2.COLOR_RGB2GRAY), cv2.CV_32F)[core]
        near_source = np.corrcoef(structure(fake[index]), structure(warped))[0, 1]
        near_original = np.corrcoef(structure(fake[index]), structure(real[index]))[0, 1]
        assert from_original > 10, (index, from_original)
        assert near_source > near_original and near_source > 0.5, (index, near_source, near_original)


def test_methods_take_turns_and_are_named_in_labels(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    assert ftcn(["synth", str(out), "--videos", "6", "--seed", "1", "--frames", "8",
                 "--methods", "faceswap,flicker"]) == 0
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows if r["label"] == "fake"] == ["faceswap", "flicker", "faceswap"]
    assert all(r["method"] == "" for r in rows if r["label"] == "real")
    assert json.loads((out / "synth.json").read_text())["synthetic"] is True
    assert ftcn(["synth", str(tmp_path / "bad"), "--videos", "2", "--methods", "morph"]) == 2


def test_report_per_method_on_known_rows() -> None:
    rows = [{"label": "real", "method": "", "score": 0.1, "verdict": "REAL"},
            {"label": "real", "method": "", "score": 0.6, "verdict": "FAKE"},
            {"label": "fake", "method": "a", "score": 0.9, "verdict": "FAKE"},
            {"label": "fake", "method": "b", "score": 0.3, "verdict": "REAL"},
            {"label": "fake", "method": "b", "score": None, "verdict": "NO_FACE"}]
    report = video_report(rows)
    assert report["overall"]["auc"] == pytest.approx(0.75) and report["overall"]["accuracy"] == pytest.approx(0.4)
    assert report["overall"]["false_positive_rate"] == pytest.approx(0.5)
    assert report["methods"]["a"]["auc"] == 1.0 and report["methods"]["b"]["auc"] == 0.5
    assert report["methods"]["b"]["scored"] == 3 and report["methods"]["b"]["videos"] == 4
    assert video_report([{"label": "", "method": "", "score": 0.2, "verdict": "REAL"}]) is None


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> tuple[Path, Path]:
    """Eight labelled synthetic videos (two methods) in a CSV with a broken entry, and tiny weights."""
    root = tmp_path_factory.mktemp("batch")
    assert ftcn(["synth", str(root / "videos"), "--videos", "8", "--seed", "4", "--frames", "16",
                 "--methods", "jitter,faceswap"]) == 0
    (root / "videos" / "broken.mp4").write_text("this is not a video")
    with open(root / "videos" / "labels.csv", "a") as handle:
        handle.write("broken.mp4,real,\n")
    torch.manual_seed(0)  # plumbing: the scores of this untrained model are not under test
    weights = save_checkpoint(root / "tiny.pt", build_model(tiny_config()), metadata={"purpose": "test"})
    return root / "videos" / "labels.csv", weights


def test_batch_predict_reports_auc_and_resumes_after_an_interruption(labelled, tmp_path: Path) -> None:
    labels, weights = labelled
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "ftcn", "predict", str(labels), "--weights", str(weights), "--out", str(out),
            "--no-video"]
    first = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*/result.json"))) < 2:  # interrupted after two videos
        assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}
    assert 2 <= len(done_before) < 9

    second = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"9 videos: {9 - len(done_before)} scored now, {len(done_before)} already done, 1 failed" in second.stdout
    for name, stamp in done_before.items():  # what was done is not scored again
        assert (out / name / "result.json").stat().st_mtime_ns == stamp
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9 and {r["method"] for r in rows if r["label"] == "fake"} == {"jitter", "faceswap"}
    broken, = [r for r in rows if r["video"] == "broken.mp4"]
    assert broken["error"] and not broken["verdict"] and "/" not in broken["error"].split(":")[0]
    report = json.loads((out / "report.json").read_text())
    assert f"video AUC {report['overall']['auc']:.3f}" in second.stdout
    assert set(report["methods"]) == {"jitter", "faceswap"}
    # ftcn evaluate on the same CSV reads the finished run instead of scoring again
    assert ftcn(["evaluate", str(weights), str(labels), "--out", str(out)]) == 0


def test_cards_from_checkpoints_and_registration(tmp_path: Path) -> None:
    from sqlalchemy.orm import sessionmaker

    from jobs.admin import main as admin
    from jobs.db import make_engine, session_scope
    from jobs.models import Model

    torch.manual_seed(0)
    meta = {"training_data": {"synthetic": True, "methods": ["faceswap"]},
            "best_val": {"video": {"auc": 0.9, "accuracy": 0.8, "count": 10}}}
    path = save_checkpoint(tmp_path / "synthetic.pt", build_model(tiny_config()), 0.4, meta)
    card = card_from_checkpoint(load_checkpoint(path))
    assert card["demonstration"] and card["intended_use"] == DEMONSTRATION
    named = save_checkpoint(tmp_path / "named.pt", build_model(tiny_config()), 0.4,
                            {"dataset": "/srv/ftcn/storage/datasets/d-42", "training_data": {"synthetic": False}})
    line = card_line("lab", card_from_checkpoint(load_checkpoint(named)))
    assert "d-42" in line and "/srv" not in line and "demonstration" not in line  # no server path in a card
    assert "a demonstration model whose verdicts on real videos mean little" in card_line("m", card)
    env = {"FTCN_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "FTCN_STORAGE_URL": (tmp_path / "s").as_uri()}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert admin(["register-model", str(path), "--name", "lab", "--training-data", "Celeb-DF v2 (train split)",
                      "--validation", "AUC 0.91 on our held-out set", "--no-demonstration",
                      "--intended-use", "internal triage"]) == 0
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    with session_scope(sessionmaker(make_engine(env["FTCN_DATABASE_URL"]))) as session:
        registered = session.query(Model).one().card
    assert registered["training_data"] == "Celeb-DF v2 (train split)" and registered["demonstration"] is False
    assert registered["intended_use"] == "internal triage" and registered["threshold"] == pytest.approx(0.4)
