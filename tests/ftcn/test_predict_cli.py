"""``ftcn predict`` end to end on real videos, with a tiny model whose weights come from a fixed seed.

The verdict's value is not under test here (the weights are untrained); the plumbing is: tracks, outputs, errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import jsonschema
import pytest
import torch

from ftcn.checkpoints import save_checkpoint
from ftcn.cli import main
from ftcn.models import build_model, tiny_config
from ftcn.predict.result import load_schema
from tests.media import TALKING_FACE, no_face_video, two_faces_video


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(1234)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    return save_checkpoint(path, build_model(tiny_config()), metadata={"purpose": "plumbing tests, untrained"})


def run_predict(video: Path, weights: Path, out: Path, *extra: str) -> tuple[int, dict | None]:
    code = main(["predict", str(video), "--weights", str(weights), "--out", str(out), *extra])
    result_path = out / "result.json"
    return code, json.loads(result_path.read_text()) if result_path.exists() else None


def test_talking_face_end_to_end(tmp_path: Path, tiny_weights: Path, capsys) -> None:
    code, result = run_predict(TALKING_FACE, tiny_weights, tmp_path, "--detect-size", "352")
    assert code == 0
    jsonschema.validate(result, load_schema())
    assert result["verdict"] in ("FAKE", "REAL")
    frames = result["input"]["frames_read"]
    assert frames == 120
    assert len(result["tracks"]) == 1
    track = result["tracks"][0]
    assert len(track["frames"]) >= 0.8 * frames
    assert len(track["timeline"]) == len(track["frames"]) == len(track["boxes"])
    assert all(s is not None for s in track["timeline"])
    assert result["score"] == pytest.approx(track["score"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("carphone_pristine.mp4: ") and result["verdict"] in line

    with av.open(str(tmp_path / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == frames
    assert decoded[0].shape[1] == result["input"]["width"] and decoded[0].shape[0] > result["input"]["height"]
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_people_give_two_tracks(tmp_path: Path, tiny_weights: Path) -> None:
    video = two_faces_video(tmp_path / "two.mp4")
    code, result = run_predict(video, tiny_weights, tmp_path / "out", "--detect-size", "576", "--no-video")
    assert code == 0
    jsonschema.validate(result, load_schema())
    assert len(result["tracks"]) == 2
    lefts = sorted(t["boxes"][0][0] for t in result["tracks"])
    assert lefts[1] - lefts[0] > 200, "the two tracks must be the two different faces"
    assert result["score"] == pytest.approx(max(t["score"] for t in result["tracks"]))


def test_video_without_faces_is_a_no_face_result(tmp_path: Path, tiny_weights: Path, capsys) -> None:
    code, result = run_predict(no_face_video(tmp_path / "empty.mp4"), tiny_weights, tmp_path / "out")
    assert code == 0
    jsonschema.validate(result, load_schema())
    assert result["verdict"] == "NO_FACE" and result["score"] is None and result["tracks"] == []
    second = result["faces"]["second_look"]
    assert second["frames_checked"] >= 1 and second["frames_with_faces"] == 0 and second["seconds"] <= 10
    assert "no face was found in 12 frames" in result["no_face_reason"]
    assert "a second detector" in result["no_face_reason"] and "saw none" in result["no_face_reason"]
    assert "NO_FACE" in capsys.readouterr().out
    assert (tmp_path / "out" / "annotated.mp4").exists()


def test_text_file_renamed_mp4_is_a_clear_error(tmp_path: Path, tiny_weights: Path, capsys) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_text("definitely not a video\n")
    code, result = run_predict(fake, tiny_weights, tmp_path / "out")
    assert code == 2 and result is None
    assert "clip.mp4 is not a readable video" in capsys.readouterr().err


def test_weights_are_required(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(TALKING_FACE), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--weights" in capsys.readouterr().err


def test_weights_that_do_not_match_are_refused(tmp_path: Path, capsys) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"resnet.s1.pathway0_stem.conv.weight": torch.zeros(1)}, foreign)
    code, result = run_predict(TALKING_FACE, foreign, tmp_path / "out")
    assert code == 2 and result is None
    assert "does not match the model" in capsys.readouterr().err


def test_official_tracker_and_stride_one(tmp_path: Path, tiny_weights: Path) -> None:
    code, result = run_predict(TALKING_FACE, tiny_weights, tmp_path, "--detect-size", "352", "--tracker",
                               "official", "--stride", "1", "--max-frames", "40", "--no-video")
    assert code == 0
    jsonschema.validate(result, load_schema())
    assert result["options"]["tracker"] == "official" and result["input"]["frames_read"] == 40
    for track in result["tracks"]:
        assert track["clips"] == max(1, len(track["frames"]) - tiny_config().clip_len + 1) or len(
            track["frames"]) < tiny_config().clip_len


def test_still_images_and_single_frames_are_not_videos(tmp_path: Path, tiny_weights: Path, capsys) -> None:
    """A photo has no motion to judge: refused with its reason (exit 2, one line), never a NO_FACE answer."""
    import cv2

    from ftcn.video.encode import write_video
    from tests.media import face_photo

    photo = face_photo()
    jpeg = tmp_path / "group.jpg"
    cv2.imwrite(str(jpeg), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    disguised = tmp_path / "photo.mp4"
    disguised.write_bytes(jpeg.read_bytes())
    single = write_video(tmp_path / "single.mp4", [photo[:256, :256]])
    for path, what in ((jpeg, "a still image"), (disguised, "a still image"), (single, "a video of a single frame")):
        code, result = run_predict(path, tiny_weights, tmp_path / f"out-{path.stem}")
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and result is None, path
        assert len(lines) == 1 and f"{path.name} is {what}, not a video" in lines[0]


def test_a_face_seen_for_a_few_frames_gives_no_verdict(tmp_path: Path, tiny_weights: Path, capsys) -> None:
    """A face passing by for 6 frames in an otherwise face-free video is reported, not judged: padded to a clip it
    would carry the back-and-forth motion FTCN reads as forgery."""
    from ftcn.synth.scenes import SceneSpec, render_scene, write_scene

    scene = render_scene(SceneSpec(face_px=90, frames=64, visible=(20, 26), centre=(0.1, 0.5), seed=3))
    code, result = run_predict(write_scene(tmp_path / "passing.mp4", scene), tiny_weights, tmp_path / "out")
    assert code == 0
    jsonschema.validate(result, load_schema())
    assert result["tracks"], "the passing face must be found (else this test proves nothing)"
    assert all(t["verdict"] == "UNJUDGED" and t["score"] is None and "too short" in t["unjudged_reason"]
               for t in result["tracks"])
    # seen but not judged: never NO_FACE (a face hid from judging), INCONCLUSIVE with what stopped it
    assert result["verdict"] == "INCONCLUSIVE" and result["score"] is None
    assert any("seen but not judged" in reason and "too short" in reason for reason in result["inconclusive_reasons"])
    assert "none could be judged" in result["no_face_reason"] and result["coverage"]["frames_judged"] == 0
    assert "INCONCLUSIVE score=-" in capsys.readouterr().out
    assert (tmp_path / "out" / "annotated.mp4").exists() and (tmp_path / "out" / "timeline.png").exists()
