"""INCONCLUSIVE: the band set on validation videos (ftcn.training.metrics.choose_band), stored in the checkpoint,
and the verdict rules (ftcn.predict.confidence), down to ``ftcn predict`` on a real video."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from ftcn.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from ftcn.cli import main
from ftcn.models import build_model, tiny_config
from ftcn.predict.confidence import QualityRules, assess_tracks, video_verdict
from ftcn.predict.result import load_schema
from ftcn.training.metrics import choose_band
from tests.media import TALKING_FACE


def test_a_cleanly_separated_validation_set_needs_no_band() -> None:
    band = choose_band([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], 0.5)
    assert band["low"] == band["high"] == 0.5 and band["share_inside"] == 0 and band["accuracy_outside"] == 1.0


def test_the_band_holds_the_mixed_scores_near_the_threshold() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(50), np.ones(50)]
    scores = np.r_[rng.uniform(0.0, 0.45, 45), rng.uniform(0.45, 0.55, 5), rng.uniform(0.55, 1.0, 45),
                   rng.uniform(0.45, 0.55, 5)]
    scores[45:50], scores[95:] = scores[45:50] + 0.04, scores[95:] - 0.04  # the confusable ones cross
    band = choose_band(labels, scores, 0.5)
    inside = (scores >= band["low"]) & (scores <= band["high"])
    outside_correct = ((scores >= 0.5) == (labels > 0.5))[~inside]
    assert band["low"] < 0.5 < band["high"]
    assert outside_correct.mean() >= 0.95 and outside_correct.mean() == pytest.approx(band["accuracy_outside"])
    assert inside.mean() <= 0.2 and inside.mean() == pytest.approx(band["share_inside"])
    narrower = choose_band(labels, scores, 0.5, target_accuracy=0.9)
    assert narrower["high"] - narrower["low"] <= band["high"] - band["low"]


def test_the_band_travels_in_the_checkpoint(tmp_path: Path) -> None:
    model = build_model(tiny_config())
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, 0.4, band=(0.3, 0.55)))
    assert loaded.band == (0.3, 0.55) and loaded.threshold == 0.4
    assert load_checkpoint(save_checkpoint(tmp_path / "none.pt", model, 0.4)).band is None
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "bad.pt", model, 0.4, band=(0.5, 0.6))  # does not hold the threshold
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["inconclusive_band"] = [0.9, 0.1]
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="inconclusive band"):
        load_checkpoint(tmp_path / "tampered.pt")


def _track(track_id: int, score: float | None, height: float = 100.0, frames: int = 60) -> dict:
    return {"id": track_id, "score": score, "verdict": "UNJUDGED" if score is None else
            ("FAKE" if score >= 0.5 else "REAL"), "frames": list(range(frames)),
            "boxes": [[0.0, 0.0, height, height]] * frames}


def _windows(count: int):
    from ftcn.faces.clips import ClipWindow

    return [ClipWindow(track=i, frames=np.arange(8), positions=np.arange(8)) for i in range(count)]


def test_the_verdict_rules() -> None:
    rules = QualityRules()
    clear = [_track(0, 0.1)]
    assess_tracks(clear, _windows(1), np.array([120.0]), 30.0, 0.5, (0.4, 0.6), rules)
    assert video_verdict(clear, "REAL") == ("REAL", None) and clear[0]["concerns"] == []

    near = [_track(0, 0.55)]
    assess_tracks(near, _windows(1), np.array([120.0]), 30.0, 0.5, (0.4, 0.6), rules)
    verdict, reasons = video_verdict(near, "FAKE")
    assert verdict == "INCONCLUSIVE" and "too near the threshold" in reasons[0]

    badly_seen = [_track(0, 0.1, height=20), _track(1, 0.2, frames=10), _track(2, 0.3)]
    assess_tracks(badly_seen, _windows(3), np.array([120.0, 120.0, 10.0]), 30.0, 0.5, None, rules)
    verdict, reasons = video_verdict(badly_seen, "REAL")
    assert verdict == "INCONCLUSIVE"
    assert [r.split(":")[0] for r in reasons] == ["face 0", "face 1", "face 2"]
    assert "too small" in reasons[0] and "too briefly" in reasons[1] and "too dark" in reasons[2]

    forged_and_dark = [_track(0, 0.9), _track(1, 0.1)]
    assess_tracks(forged_and_dark, _windows(2), np.array([120.0, 5.0]), 30.0, 0.5, (0.4, 0.6), rules)
    assert video_verdict(forged_and_dark, "FAKE") == ("FAKE", None)  # one reliably forged face decides


def test_predict_says_inconclusive_with_its_reasons(tmp_path: Path, capsys) -> None:
    """A real video through ``ftcn predict``: without a band, a verdict; with a band around its own score,
    INCONCLUSIVE with the reason, in result.json (valid against the schema) and on the terminal."""
    torch.manual_seed(1234)
    model = build_model(tiny_config())
    plain = save_checkpoint(tmp_path / "plain.pt", model, 0.5)
    assert main(["predict", str(TALKING_FACE), "--weights", str(plain), "--out", str(tmp_path / "a"),
                 "--no-video"]) == 0
    first = json.loads((tmp_path / "a" / "result.json").read_text())
    assert first["verdict"] in ("REAL", "FAKE") and first["band"] is None
    score = first["score"]
    threshold = min(max(score, 0.01), 0.99)
    banded = save_checkpoint(tmp_path / "banded.pt", model, threshold,
                             band=(max(threshold - 0.05, 1e-3), min(threshold + 0.05, 0.999)))
    capsys.readouterr()
    assert main(["predict", str(TALKING_FACE), "--weights", str(banded), "--out", str(tmp_path / "b"),
                 "--no-video"]) == 0
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    jsonschema.validate(result, load_schema())
    assert result["verdict"] == "INCONCLUSIVE" and result["score"] == pytest.approx(score)
    assert any("too near the threshold" in reason for reason in result["inconclusive_reasons"])
    judged = [track for track in result["tracks"] if track["score"] is not None]
    assert judged[0]["verdict"] == "INCONCLUSIVE" and judged[0]["quality"]["face_px"] > 0
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "too near the threshold" in out


def test_a_face_any_detector_saw_is_never_no_face() -> None:
    """No judged face: NO_FACE only when nothing was seen; a face the second look saw, or a track that could not
    be judged, makes the video INCONCLUSIVE with what stopped it."""
    looked = {"detector": "MTCNN", "frames_checked": 12, "frames_with_faces": 1, "saw_a_face": False}
    assert video_verdict([], "NO_FACE", looked) == ("NO_FACE", None)
    verdict, reasons = video_verdict([], "NO_FACE", {**looked, "frames_with_faces": 4, "saw_a_face": True})
    assert verdict == "INCONCLUSIVE" and "saw a face in 4 of 12 sampled frames" in reasons[0]
    unjudged = [{"id": 0, "score": None, "verdict": "UNJUDGED", "unjudged_reason": "too short (6 frames)"}]
    verdict, reasons = video_verdict(unjudged, "NO_FACE", looked)
    assert verdict == "INCONCLUSIVE" and reasons == ["face 0 was seen but not judged: too short (6 frames)"]
