"""The worker's handlers and bookkeeping on SQLite and local storage, without Celery or Redis: every error code a
job can end with is reached here through the real task wrapper (``worker.tasks.execute``), and the handlers'
progress reports and artifacts are checked directly."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from celery.exceptions import SoftTimeLimitExceeded

from ftcn import errors as ftcn_errors
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import register_model
from jobs.db import session_scope, upgrade
from jobs.errors import ErrorCode
from jobs.models import Dataset, Job, Model
from jobs.queue import make_celery
from jobs.service import create_job
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from jobs.storage import SourceTooLarge
from tests.datasets import write_clip_dataset
from tests.media import FACE_PHOTO, TALKING_FACE, no_face_video
from worker.failures import CODES, classify, without_paths
from worker.context import JobContext, Succeeded
from worker.handlers import HANDLERS
from worker.state import WorkerState
from worker.tasks import execute

#: Reached by the lease and reconciler tests (tests/jobs/test_lifecycle.py), which fail jobs without running them.
REACHED_ELSEWHERE = {ErrorCode.WORKER_LOST}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)  # plumbing only: this model's verdicts are not under test
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", build_model(tiny_config()),
                           metadata={"purpose": "worker tests"})


@pytest.fixture()
def state(tmp_path: Path) -> WorkerState:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                        storage_url=(tmp_path / "storage").as_uri(), max_video_s=60.0, max_upload_mb=16)
    upgrade(settings.database_url)
    return WorkerState(settings=settings, celery=make_celery(settings))


@pytest.fixture()
def model_id(state: WorkerState, checkpoint: Path) -> str:
    return register_model(state.settings, checkpoint, "tiny", default=True)


def test_warm_up_prepares_the_default_model_before_any_job(state: WorkerState, model_id: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool process prepares the shared default model at start (ONNX export on a CPU), so its first job
    finds the engine ready and exports nothing."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert state.warm_up() == {"model_id": model_id, "backend": "mtcnn", "detector_id": None}
    exported = sorted((cache / "ftcn" / "onnx").glob("*.onnx"))
    assert len(exported) == 1
    made = exported[0].stat().st_mtime_ns
    video = put(state, "in/video.mp4", short_video(tmp_path / "ok.mp4").read_bytes())
    job = run(state, JobKind.PREDICT, {"model_id": model_id, "input_key": video, "options": {"max_frames": 16}})
    assert job.status == JobStatus.SUCCEEDED.value, job.error
    assert sorted((cache / "ftcn" / "onnx").glob("*.onnx")) == exported
    assert exported[0].stat().st_mtime_ns == made


def test_warm_up_without_a_default_model_prepares_only_the_face_backend(state: WorkerState) -> None:
    assert state.warm_up() == {"model_id": None, "backend": "mtcnn", "detector_id": None}


def test_warm_up_prepares_the_registered_retinaface_detector(state: WorkerState, tmp_path: Path) -> None:
    """Jobs get RetinaFace by default once its weights are registered (jobs.detectors), so that is what the
    warm-up prepares."""
    from jobs.admin import register_detector
    from tests.parity_recipe import write_recipe_detector_files

    detector_id = register_detector(state.settings, *write_recipe_detector_files(tmp_path), "recipe weights")
    assert state.warm_up() == {"model_id": None, "backend": "retinaface", "detector_id": detector_id}


def short_video(path: Path, frames: int = 24) -> Path:
    import av

    from ftcn.video.encode import write_video

    with av.open(str(TALKING_FACE)) as source:
        images = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), source.decode(video=0))]
    return write_video(path, images, fps=25)


def submit(state: WorkerState, kind: JobKind, params: dict) -> str:
    with session_scope(state.sessions) as session:
        return create_job(session, kind, params, owner="tester").id


def run(state: WorkerState, kind: JobKind, params: dict) -> Job:
    job_id = submit(state, kind, params)
    execute(job_id, state)
    with session_scope(state.sessions) as session:
        return session.get(Job, job_id)


def put(state: WorkerState, key: str, data: bytes) -> str:
    state.storage.put_bytes(key, data)
    return key


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def dataset_row(state: WorkerState, tmp_path: Path, videos: dict[str, tuple[str, str]]) -> str:
    """A preprocessed dataset of random tiny-model clips, written into storage and registered."""
    write_clip_dataset(Path(state.storage.dataset_location("datasets/d1")), videos, (8, 64, 3))
    with session_scope(state.sessions) as session:
        session.add(Dataset(id="d1", storage_prefix="datasets/d1", counts={}, owner="tester"))
    return "d1"


TRAIN = {"epochs": 1, "batch_size": 2, "lr": 1e-4, "model_size": "tiny", "freeze": False}


def failing_cases(state: WorkerState, tmp_path: Path, model_id: str) -> dict[ErrorCode, tuple[JobKind, dict]]:
    """One job per error code, each made to fail for that reason alone."""
    face_free = no_face_video(tmp_path / "noface.mp4", frames=12).read_bytes()
    corrupt_model = "models/corrupt/model.pt"
    put(state, corrupt_model, b"not a checkpoint")
    with session_scope(state.sessions) as session:
        session.add(Model(id="corrupt", name="corrupt", threshold=0.5, storage_key=corrupt_model, config={}))
    long_video = short_video(tmp_path / "long.mp4", frames=40)
    state.settings = replace(state.settings, max_video_s=1.0)  # 40 frames at 25 fps last 1.6 s: over this bound
    video = put(state, "in/video.mp4", short_video(tmp_path / "ok.mp4").read_bytes())
    predict = {"model_id": model_id, "options": {"max_frames": 16}}
    dataset = dataset_row(state, tmp_path, {"a": ("real", "train"), "b": ("real", "val")})
    return {
        ErrorCode.BAD_URL: (JobKind.PREDICT, {**predict, "video_url": "http://127.0.0.1:9/video.mp4"}),
        ErrorCode.INVALID_VIDEO: (JobKind.PREDICT, {**predict, "input_key": put(state, "in/junk.mp4", b"\x00junk" * 99)}),
        ErrorCode.VIDEO_TOO_LARGE: (JobKind.PREDICT, {**predict, "input_key": put(state, "in/long.mp4",
                                                                               long_video.read_bytes())}),
        ErrorCode.NOT_A_VIDEO: (JobKind.PREDICT, {**predict, "input_key": put(state, "in/photo.mp4",
                                                                           FACE_PHOTO.read_bytes())}),
        ErrorCode.UNKNOWN_MODEL: (JobKind.PREDICT, {**predict, "model_id": "gone", "input_key": video}),
        ErrorCode.BAD_CHECKPOINT: (JobKind.PREDICT, {**predict, "model_id": "corrupt", "input_key": video}),
        ErrorCode.UNKNOWN_BACKEND: (JobKind.PREDICT, {**predict, "input_key": video,
                                                      "options": {"backend": "retinaface", "detector_id": "gone"}}),
        ErrorCode.BAD_OPTION: (JobKind.PREDICT, {**predict, "input_key": video, "options": {"stride": 0}}),
        ErrorCode.STORAGE_UNAVAILABLE: (JobKind.PREDICT, {**predict, "input_key": "in/never-uploaded.mp4"}),
        ErrorCode.BAD_ARCHIVE: (JobKind.PREPROCESS, {"input_key": put(state, "in/evil.zip",
                                                                      zipped({"../escape.mp4": face_free}))}),
        ErrorCode.BAD_DATASET: (JobKind.PREPROCESS, {"input_key": put(state, "in/flat.zip",
                                                                      zipped({"videos/a.mp4": face_free}))}),
        ErrorCode.NO_CLIPS: (JobKind.PREPROCESS, {"input_key": put(state, "in/noface.zip", zipped(
            {"real/a.mp4": face_free, "fake/b.mp4": face_free}))}),
        ErrorCode.BAD_SOURCE: (JobKind.PREPROCESS, {"s3_prefix": "s3://no-such-bucket/videos"}),
        ErrorCode.UNKNOWN_DATASET: (JobKind.TRAIN, {**TRAIN, "dataset_id": "gone"}),
        ErrorCode.CANNOT_TRAIN: (JobKind.TRAIN, {**TRAIN, "dataset_id": dataset}),
    }


def test_every_error_code_is_reached_with_a_readable_reason(state: WorkerState, tmp_path: Path, model_id: str,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    state.settings = replace(state.settings, s3_endpoint_url="http://127.0.0.1:9")  # nothing listens there
    cases = failing_cases(state, tmp_path, model_id)
    for code, (kind, params) in cases.items():
        job = run(state, kind, params)
        assert (job.status, job.error_code) == ("failed", code.value), (code, job.error_code, job.error_message)
        assert job.error_message and str(tmp_path) not in job.error_message and "/tmp/" not in job.error_message
    reached = set(cases) | REACHED_ELSEWHERE | {classify(SoftTimeLimitExceeded(), 60).code,
                                                classify(KeyError("x"), 60).code,
                                                classify(SourceTooLarge("big"), 60).code}
    assert reached == set(ErrorCode), set(ErrorCode) - reached


def test_a_bug_is_internal_and_its_details_stay_in_the_log(state: WorkerState, tmp_path: Path, model_id: str,
                                                          monkeypatch, caplog) -> None:
    def broken(ctx: JobContext) -> Succeeded:
        raise KeyError("secret detail at /srv/ftcn/worker.py")

    monkeypatch.setitem(HANDLERS, JobKind.PREDICT, broken)
    job = run(state, JobKind.PREDICT, {"model_id": model_id, "input_key": "in/x.mp4"})
    assert (job.status, job.error_code) == ("failed", "internal")
    assert "secret" not in job.error_message and "KeyError" in job.error_message
    assert "secret detail" in caplog.text


def test_classification_table() -> None:
    assert classify(SoftTimeLimitExceeded(), 1800).message == "the job ran out of time (limit 1800 s)"
    assert classify(ftcn_errors.NotAVideo("x"), 1).code is ErrorCode.NOT_A_VIDEO  # before its parent InvalidVideo
    assert classify(ftcn_errors.VideoTooLarge("x"), 1).code is ErrorCode.VIDEO_TOO_LARGE
    assert classify(ftcn_errors.InvalidVideo("x"), 1).code is ErrorCode.INVALID_VIDEO
    classes = [kind for kind, _ in CODES]
    for index, kind in enumerate(classes):  # no entry is shadowed by a broader one above it
        assert not any(issubclass(kind, earlier) for earlier in classes[:index]), kind
    assert without_paths("Invalid data found when processing input: '/tmp/ftcn-job-x1/input.mp4'") == (
        "Invalid data found when processing input: 'input.mp4'")
    assert without_paths("see https://example.org/a/b.mp4 and s3://bucket/key/x") == (
        "see https://example.org/a/b.mp4 and s3://bucket/key/x")


def test_predict_reports_progress_and_stores_its_artifacts(state: WorkerState, tmp_path: Path,
                                                          model_id: str) -> None:
    key = put(state, "in/video.mp4", short_video(tmp_path / "ok.mp4").read_bytes())
    reports: list[tuple[str, float]] = []
    context = JobContext(job_id=submit(state, JobKind.PREDICT, {}), params={
        "model_id": model_id, "input_key": key, "filename": "talk.mp4", "options": {"max_frames": 24}},
        state=state, progress=lambda stage, percent: reports.append((stage, percent)), owner="tester")
    outcome = HANDLERS[JobKind.PREDICT](context)
    assert isinstance(outcome, Succeeded)
    result = outcome.result
    stages = [stage for stage, _ in reports]
    assert stages[0] == "faces" and "clips" in stages and stages[-1] == "annotate"
    percents = [percent for _, percent in reports]
    assert percents == sorted(percents) and 0 < percents[-1] <= 100
    artifacts = result["artifacts"]
    assert {"result", "annotated_video", "timeline"} <= set(artifacts)
    assert all(key.startswith(f"jobs/{context.job_id}/") and state.storage.exists(key) for key in artifacts.values())
    document = json.loads(state.storage.get_bytes(artifacts["result"]))
    assert document["verdict"] == result["verdict"] and document["input"]["filename"] == "talk.mp4"
    assert result["faces"] == len(document["tracks"]) >= 1


def test_train_job_registers_its_model(state: WorkerState, tmp_path: Path) -> None:
    dataset = dataset_row(state, tmp_path, {"r1": ("real", "train"), "f1": ("fake", "train"),
                                            "r2": ("real", "val"), "f2": ("fake", "val")})
    job = run(state, JobKind.TRAIN, {**TRAIN, "dataset_id": dataset, "name": "mine", "make_default": True})
    assert job.status == JobStatus.SUCCEEDED.value, job.error_message
    assert (job.progress, job.stage) == (100.0, "done")
    with session_scope(state.sessions) as session:
        model = session.get(Model, job.result["model_id"])
        assert model.name == "mine" and model.is_default and model.owner == "tester"
    assert all(state.storage.exists(key) for key in job.result["artifacts"].values())


def test_state_after_fork_makes_new_connections(state: WorkerState) -> None:
    sessions, storage = state.sessions, state.storage
    assert state.sessions is sessions  # built once
    state.after_fork()
    assert state.sessions is not sessions and state.storage is not storage


def test_preprocess_reads_a_standard_dataset_and_train_takes_the_paper_recipe(state: WorkerState,
                                                                              tmp_path: Path) -> None:
    from ftcn.checkpoints import load_checkpoint
    from ftcn.training.recipes import PAPER
    from tests.standard_trees import celebdf_tree

    media = {"real": short_video(tmp_path / "real.mp4", frames=16), "fake": short_video(tmp_path / "fake.mp4",
                                                                                         frames=16)}
    tree = tmp_path / "upload" / "Celeb-DF-v2"
    test, train = celebdf_tree(tree, media.__getitem__)
    archive = zipped({path.relative_to(tree.parent).as_posix(): path.read_bytes()
                      for path in tree.rglob("*") if path.is_file()})
    key = put(state, "in/celebdf.zip", archive)
    options = {"dataset": "celebdf", "clip_len": 8, "size": 64, "max_clips": 1, "max_frames": 16, "val": 0.5}
    job = run(state, JobKind.PREPROCESS, {"input_key": key, "options": options})
    assert job.status == JobStatus.SUCCEEDED.value, job.error_message
    with session_scope(state.sessions) as session:
        dataset = session.get(Dataset, job.result["dataset_id"])
        counts = dict(dataset.counts)
    assert counts["kind"] == "celebdf" and counts["val_from_train"]
    assert counts["split_videos"]["test"] == len(test)  # the official test list, as published
    assert counts["split_videos"]["train"] + counts["split_videos"]["val"] == len(train)
    described = json.loads(state.storage.get_bytes(f"datasets/{dataset.id}/dataset.json"))
    assert described["kind"] == "celebdf" and described["methods"] == ["Celeb-synthesis"]

    wrong = run(state, JobKind.PREPROCESS, {"input_key": key, "options": {**options, "dataset": "ffpp"}})
    assert (wrong.status, wrong.error_code) == ("failed", ErrorCode.BAD_DATASET.value)
    assert wrong.error_message == "FaceForensics++: no original_sequences found at the top of the dataset (up to " \
                                  "two folders deep)"

    trained = run(state, JobKind.TRAIN, {**TRAIN, "freeze": False, "dataset_id": dataset.id, "recipe": "paper",
                                         "given": ["epochs", "batch_size", "model_size"]})
    assert trained.status == JobStatus.SUCCEEDED.value, trained.error_message
    with session_scope(state.sessions) as session:
        model = session.get(Model, trained.result["model_id"])
        state.storage.download(model.storage_key, tmp_path / "trained.pt")
    summary = load_checkpoint(tmp_path / "trained.pt").metadata
    assert (summary["recipe"], summary["optimizer"], summary["lr"]) == ("paper", PAPER.train["optimizer"],
                                                                        PAPER.train["lr"])
    assert (summary["batch_size"], summary["model"]) == (TRAIN["batch_size"], "ftcn_tt_tiny")  # given: they win
