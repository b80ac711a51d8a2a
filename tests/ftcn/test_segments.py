"""A long video analysed in time segments and merged (ftcn.predict.segments) gives the one-run result: the same
tracks, video and track scores within 0.01, the same verdict, every frame of each track covered by clips."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch

from ftcn.checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint
from ftcn.faces.backends import make_backend
from ftcn.models import build_model, tiny_config
from ftcn.faces.scan import scan_interval
from ftcn.predict.pipeline import PredictOptions, predict_video
from ftcn.predict.result import load_schema
from ftcn.predict.segments import merged_document, plan_segments, run_segment
from ftcn.synth.generate import looped_sample
from ftcn.video.decode import probe


def test_segments_cover_the_video_on_detection_frames() -> None:
    plans = plan_segments(1000, 30.0, 5.0, clip_len=8, detect_every=3)
    assert [p.start for p in plans] == [0, 150, 300, 450, 600, 750, 900] and plans[-1].end == 1000
    assert all(a.end == b.start for a, b in zip(plans, plans[1:]))
    assert all(p.start % 3 == 0 and p.decode_start % 3 == 0 for p in plans)
    assert plans[1].decode_start == 150 - 9 and plans[0].decode_end == 150 + 9  # one clip, on detection frames
    assert [(p.start, p.end) for p in plan_segments(160, 30.0, 5.0, 8, 3)] == [(0, 160)]  # a short tail folds in
    assert len(plan_segments(100, 30.0, 5.0, 8, 3)) == 1


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    return looped_sample(tmp_path_factory.mktemp("long") / "long.mp4", 20.0, 176, 144)


def test_merged_segments_match_one_run(long_video: Path, tmp_path: Path) -> None:
    torch.manual_seed(7)
    weights = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_config()), 0.5)
    checkpoint = load_checkpoint(weights)
    model = model_from_checkpoint(checkpoint)
    backend = make_backend("dlib")
    options = PredictOptions()
    whole = predict_video(long_video, model, checkpoint, backend, options)

    info = probe(long_video)
    plans = plan_segments(whole["input"]["frames_read"], info.fps, 5.0, model.cfg.clip_len,
                          scan_interval(backend, info, None))
    assert len(plans) == 4
    parts = [json.loads(json.dumps(run_segment(long_video, model, checkpoint, backend, options, plan)))
             for plan in reversed(plans)]  # any order, through JSON as between workers
    merged = merged_document(long_video, parts, model, checkpoint, backend, options)
    jsonschema.validate(merged, load_schema())

    assert [(t["start_frame"], t["end_frame"]) for t in merged["tracks"]] == \
        [(t["start_frame"], t["end_frame"]) for t in whole["tracks"]]
    assert merged["verdict"] == whole["verdict"]
    assert merged["score"] == pytest.approx(whole["score"], abs=0.01)
    for mine, theirs in zip(merged["tracks"], whole["tracks"]):
        assert mine["verdict"] == theirs["verdict"]
        if theirs["score"] is not None:
            assert mine["score"] == pytest.approx(theirs["score"], abs=0.01)
            assert all(value is not None for value in mine["timeline"])  # every frame covered by a clip
            assert abs(mine["clips"] - theirs["clips"]) <= len(plans)
            assert mine["looked_again"] == theirs["looked_again"]  # the adaptive pass, on the whole track
    assert merged["coverage"] == whole["coverage"]
