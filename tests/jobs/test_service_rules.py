"""The rules the API and the workers ask of ``jobs``, one at a time over a real (SQLite) database and local files:
who may use an upload and when (``jobs.uploads``), tokens and what each may see (``jobs.auth``), which face
backend a job gets (``jobs.detectors``), when a finished job answers a new one (``jobs.reuse``), and the typed job
parameters (``jobs.params``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from jobs import auth, detectors, reuse, uploads
from jobs.db import session_scope
from jobs.models import Detector, Job, Model, Upload, utcnow
from jobs.moves import move_job
from jobs.params import InvalidParams, PredictParams, TrainParams, new_params, read_params
from jobs.service import create_job
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from jobs.storage import LocalStorage
from tests.media import FACE_PHOTO, TALKING_FACE

ALICE = auth.Principal(owner="alice")
BOB = auth.Principal(owner="bob")
ADMIN = auth.Principal(owner="root", admin=True)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", "a-secret", "http://api.example")


# -- uploads ------------------------------------------------------------------------------------------------------

def _upload(sessions: sessionmaker, storage: LocalStorage, principal: auth.Principal, data: bytes | None,
            name: str = "clip.mp4") -> str:
    with session_scope(sessions) as session:
        upload_id = uploads.create_upload(session, storage, principal, name)["upload_id"]
        key = session.get(Upload, upload_id).storage_key
    if data is not None:
        storage.put_bytes(key, data)
    return upload_id


def _refusal(sessions: sessionmaker, storage: LocalStorage, upload_id: str, principal: auth.Principal = ALICE,
             settings: Settings | None = None, **kwargs) -> tuple[int, str]:
    with session_scope(sessions) as session, pytest.raises(uploads.UploadRefused) as refused:
        uploads.usable_upload(session, storage, upload_id, principal, settings or Settings(), **kwargs)
    return refused.value.status, refused.value.slug


def test_an_upload_is_usable_once_by_its_owner_and_only_when_it_holds_a_video(sessions, storage) -> None:
    video = TALKING_FACE.read_bytes()
    good = _upload(sessions, storage, ALICE, video)
    assert _refusal(sessions, storage, good, BOB) == (404, "not-found")  # another owner's is not there at all
    assert _refusal(sessions, storage, _upload(sessions, storage, ALICE, None)) == (409, "upload-missing")
    assert _refusal(sessions, storage, _upload(sessions, storage, ALICE, FACE_PHOTO.read_bytes(), "a.mp4")) == (
        422, "not-a-video")
    assert _refusal(sessions, storage, _upload(sessions, storage, ALICE, b"plain text, not a container")) == (
        415, "unsupported-file")
    big = _upload(sessions, storage, ALICE, video + bytes(1024 * 1024))
    assert _refusal(sessions, storage, big, settings=Settings(max_upload_mb=1)) == (413, "too-large")
    later = utcnow() + timedelta(seconds=uploads.UPLOAD_TTL_S + 1)
    assert _refusal(sessions, storage, good, now=later) == (410, "upload-expired")
    with session_scope(sessions) as session:
        row = uploads.usable_upload(session, storage, good, ALICE, Settings())
        job = create_job(session, JobKind.PREDICT, {"model_id": "m"}, owner="alice")
        key = uploads.hand_to_job(session, storage, row, job.id)
    assert storage.get_bytes(key) == video
    assert _refusal(sessions, storage, good) == (409, "upload-used")


def test_the_sweep_removes_only_unused_uploads_that_expired(sessions, storage) -> None:
    stale = _upload(sessions, storage, ALICE, b"x" * 10)
    fresh = _upload(sessions, storage, ALICE, b"y" * 10)
    with session_scope(sessions) as session:
        session.get(Upload, stale).expires_at = utcnow() - timedelta(seconds=1)
        fresh_key = session.get(Upload, fresh).storage_key
    with session_scope(sessions) as session:
        assert uploads.sweep_unused(session, storage) == 1
        assert session.get(Upload, stale) is None and session.get(Upload, fresh) is not None
    assert storage.keys("uploads") == [fresh_key]


# -- tokens and visibility -----------------------------------------------------------------------------------------

def test_a_token_authenticates_until_revoked_and_sees_only_its_owners_rows(sessions) -> None:
    with session_scope(sessions) as session:
        token, secret = auth.create_token(session, "alice", can_train=True)
        assert auth.authenticate(session, secret) == auth.Principal("alice", False, True, token.id)
        assert auth.authenticate(session, secret.removeprefix(auth.PREFIX)) is None  # not one of ours
        assert auth.authenticate(session, secret + "x") is None
        with pytest.raises(ValueError, match="owner"):
            auth.create_token(session, "  ")
        mine = create_job(session, JobKind.PREDICT, {}, owner="alice")
        create_job(session, JobKind.PREDICT, {}, owner="bob")
        session.add_all([Model(name="shared", threshold=0.5, storage_key="k1"),
                         Model(name="bob's", threshold=0.5, storage_key="k2", owner="bob")])
        session.flush()
        assert [job.id for job in session.scalars(auth.visible(select(Job), Job, ALICE))] == [mine.id]
        assert len(session.scalars(auth.visible(select(Job), Job, ADMIN)).all()) == 2
        assert [m.name for m in session.scalars(auth.visible(select(Model), Model, ALICE))] == ["shared"]
        assert auth.can_see(mine, ALICE) and not auth.can_see(mine, BOB) and auth.can_see(mine, ADMIN)
        assert auth.revoke_token(session, token.id) and not auth.revoke_token(session, "no-such-token")
        assert auth.authenticate(session, secret) is None


# -- face backends -------------------------------------------------------------------------------------------------

def test_a_job_gets_retinaface_only_when_its_weights_are_registered(sessions) -> None:
    with session_scope(sessions) as session:
        assert detectors.resolve_backend(session, None) == {"backend": "mtcnn", "detector_id": None}
        assert detectors.resolve_backend(session, "dlib") == {"backend": "dlib", "detector_id": None}
        for refused in ("retinaface", "opencv"):
            with pytest.raises(detectors.UnknownBackend):
                detectors.resolve_backend(session, refused)
        session.add(Detector(id="d1", name="official", backend="retinaface", storage_prefix="detectors/d1"))
        session.flush()
        assert detectors.resolve_backend(session, None) == {"backend": "retinaface", "detector_id": "d1"}
        assert detectors.resolve_backend(session, "mtcnn") == {"backend": "mtcnn", "detector_id": None}
        with pytest.raises(detectors.UnknownBackend, match="d1"):
            detectors.resolve_backend(session, "dlib", "d1")  # that id is not a dlib detector
        with pytest.raises(detectors.UnknownBackend):
            detectors.resolve_backend(session, None, "d2")


# -- reuse ---------------------------------------------------------------------------------------------------------

def _answered(sessions: sessionmaker, owner: str, options: dict, settings: Settings, reuse_wanted: bool = True
              ) -> str | None:
    """A new job of ``owner`` for the same content: the job that answers it, or None (it must run)."""
    with session_scope(sessions) as session:
        params = read_params(PredictParams, new_params(PredictParams, model_id="m2", options=options,
                                                       reuse=reuse_wanted))
        job = session.get(Job, create_job(session, JobKind.PREDICT, params.model_dump(), owner=owner).id)
        move_job(session, job, JobStatus.RUNNING)
        reused = reuse.on_worker(session, job.id, params, "content", settings)
        return None if reused is None else reused["reused_from"]


def test_a_finished_job_answers_the_same_content_with_the_same_weights_and_options(sessions) -> None:
    settings = Settings()
    with session_scope(sessions) as session:  # two registrations of the same weights
        session.add_all([Model(id="m1", name="a", threshold=0.5, storage_key="k1", sha256="w"),
                         Model(id="m2", name="b", threshold=0.5, storage_key="k2", sha256="w")])
        source = session.get(Job, create_job(session, JobKind.PREDICT, {"model_id": "m1"}, owner="alice").id)
        params = read_params(PredictParams, {"model_id": "m1", "options": {"stride": 4}})
        source.reuse_key = reuse.key_for(session, params, "content")
        move_job(session, source, JobStatus.RUNNING)
        move_job(session, source, JobStatus.SUCCEEDED)
        source.result = {"verdict": "REAL"}
        source_id = source.id
    assert _answered(sessions, "alice", {"stride": 4}, settings) == source_id
    assert _answered(sessions, "alice", {"stride": 8}, settings) is None  # other options, another analysis
    assert _answered(sessions, "alice", {"stride": 4}, settings, reuse_wanted=False) is None
    assert _answered(sessions, "bob", {"stride": 4}, settings) is None  # the owner scope keeps results apart
    assert _answered(sessions, "bob", {"stride": 4}, Settings(reuse_scope="all")) == source_id


# -- typed parameters ----------------------------------------------------------------------------------------------

def test_params_are_checked_when_made_and_read_back_whatever_another_version_wrote() -> None:
    with pytest.raises(TypeError, match="modle_id"):
        new_params(PredictParams, modle_id="m")
    stored = new_params(PredictParams, model_id="m", options={"stride": 2, "backend": None, "detector_id": None,
                                                              "max_frames": None}, video_url="https://v.example/a")
    assert stored == {"model_id": "m", "options": {"stride": 2, "backend": None, "detector_id": None,
                                                   "max_frames": None}, "video_url": "https://v.example/a"}
    read = read_params(PredictParams, {**stored, "written_by_a_later_version": 1})
    assert (read.model_id, read.options.stride, read.input_key, read.reuse) == ("m", 2, None, True)
    with pytest.raises(InvalidParams, match="options.stride cannot be used"):  # a row no request could make
        read_params(PredictParams, {"model_id": "m", "options": {"stride": 0}})
    train = read_params(TrainParams, {"dataset_id": "d", "epochs": 3, "lr": 0.1, "recipe": "paper",
                                      "given": ["epochs"]})
    assert train.config_values({"epochs": 30, "lr": 0.01, "batch_size": 16}) == {
        "epochs": 3, "lr": 0.01, "batch_size": 16}  # the recipe's, with what the request set over them
