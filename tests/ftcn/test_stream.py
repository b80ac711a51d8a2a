"""The one-decode pipeline (ftcn.predict.stream) gives exactly the two-pass result, and stops cleanly on errors."""

from __future__ import annotations

import threading

import pytest

from ftcn.errors import InvalidVideo
from ftcn.faces.backends import make_backend
from ftcn.faces.dlib_backend import DlibBackend
from ftcn.predict.pipeline import PredictOptions, predict_video
from tests.media import TALKING_FACE, group_pan_video, two_faces_video
from tests.models import untrained

COMPARED = ("tracks", "score", "verdict", "coverage", "mean_clip_score", "no_face_reason", "faces")


@pytest.fixture(scope="module")
def tiny():
    return untrained("tiny", seed=0)


@pytest.fixture(scope="module")
def backend():
    return make_backend("dlib")


@pytest.fixture(scope="module")
def detect_only():
    """Detection on every frame and no following: a face the detector misses leaves a gap the tracker bridges."""
    return DlibBackend(follows_faces=False)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    return {
        "talking_face": TALKING_FACE,
        "two_faces": two_faces_video(folder / "two.mp4", frames=40),
        # faces enter and leave; frames 30-31 and 60-66 hide them (a bridged gap, and a gap that ends tracks)
        "group_pan": group_pan_video(folder / "pan.mp4", frames=100, hidden=(30, 31, *range(60, 67))),
    }


@pytest.mark.parametrize("name", ["talking_face", "two_faces", "group_pan"])
@pytest.mark.parametrize("stride", [None, 3])
@pytest.mark.parametrize("finder", ["following", "detect_only"])
def test_stream_equals_two_passes(tiny, backend, detect_only, videos, name, stride, finder):
    model, checkpoint = tiny
    faces, every = (backend, None) if finder == "following" else (detect_only, 1)
    two = predict_video(videos[name], model, checkpoint, faces,
                        PredictOptions(stride=stride, detect_every=every, streaming=False))
    one = predict_video(videos[name], model, checkpoint, faces, PredictOptions(stride=stride, detect_every=every))
    assert one["options"]["streaming"] and not two["options"]["streaming"]
    for key in COMPARED:
        assert one[key] == two[key], key
    assert any(track["clips"] for track in one["tracks"])


def test_group_pan_has_the_cases_the_stream_must_handle(tiny, detect_only, videos):
    """The equality above means something only if the pan has several tracks, starting and ending mid-video, and
    bridged frames."""
    model, checkpoint = tiny
    result = predict_video(videos["group_pan"], model, checkpoint, detect_only, PredictOptions(detect_every=1))
    tracks = result["tracks"]
    assert len([track for track in tracks if track["clips"]]) >= 3
    assert any(not all(track["detected"]) for track in tracks)
    assert any(track["end_frame"] < result["input"]["frames_read"] for track in tracks)
    assert any(track["start_frame"] > 0 for track in tracks)


def test_a_failing_progress_callback_stops_the_producer(tiny, backend, videos):
    model, checkpoint = tiny

    class Canceled(Exception):
        pass

    def cancel(stage, done, total):
        if stage == "faces" and done < total:  # the first report comes while the producer is decoding
            raise Canceled()

    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(Canceled):
        predict_video(videos["talking_face"], model, checkpoint, backend, PredictOptions(batch_size=1),
                      progress=cancel)
    assert not [t for t in threading.enumerate() if t.name == "ftcn-faces" and t.ident not in before]


def test_a_decoding_error_reaches_the_caller(tiny, backend, tmp_path):
    model, checkpoint = tiny
    data = TALKING_FACE.read_bytes()
    broken = tmp_path / "cut.mp4"
    broken.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: nothing decodes
    with pytest.raises(InvalidVideo):
        predict_video(broken, model, checkpoint, backend, PredictOptions())
