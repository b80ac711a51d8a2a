"""The job service end to end over HTTP: real Redis, a real Celery worker process, the API on a real HTTP server,
twice: with SQLite + local storage (the embedded default) and with a real PostgreSQL + an S3 protocol server
(moto). preprocess an uploaded archive -> train (frozen backbone) -> model registered -> predict with it; every
kind of bad input gets a precise answer and changes nothing."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shlex
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
import requests

from api import create_app
from ftcn.cli import main as ftcn_main
from ftcn.video.encode import write_video
from jobs.admin import make_token
from jobs.settings import Settings
from tests.media import FACE_PHOTO, TALKING_FACE, face_photo
from tests.servers import celery_worker, http_app, http_server, postgres_server, redis_server, s3_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_UPLOAD_MB = 8


@dataclass
class Service:
    base: str
    settings: Settings
    list_files: Callable[[], list[str]]
    worker_log: str
    http: requests.Session  # carries this test owner's bearer token
    token: str
    app: Any  # the API's Flask app (served on ``base``), for tests that change a setting

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def wait(self, job_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(self.url(f"/jobs/{job_id}"), timeout=10).json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not finish; worker log:\n{Path(self.worker_log).read_text()[-3000:]}")

    def counts(self) -> tuple[int, int]:
        jobs = self.http.get(self.url("/jobs?limit=1"), timeout=10).json()["total"]
        return jobs, len(self.list_files())


@contextmanager
def backing_stores(kind: str, root: Path) -> Iterator[tuple[dict[str, str], Callable[[], list[str]]]]:
    """FTCN_* variables for the database and storage, and a way to list every stored file."""
    if kind == "embedded":
        storage = root / "storage"
        yield ({"FTCN_DATABASE_URL": f"sqlite:///{root / 'ftcn.sqlite3'}", "FTCN_STORAGE_URL": storage.as_uri()},
               lambda: sorted(str(p) for p in storage.rglob("*") if p.is_file()))
        return
    import boto3

    with postgres_server() as database_url, s3_server() as endpoint:
        credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update(credentials)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="ftcn")

        def list_objects() -> list[str]:
            return sorted(o["Key"] for o in client.list_objects_v2(Bucket="ftcn").get("Contents", []))

        yield ({"FTCN_DATABASE_URL": database_url, "FTCN_STORAGE_URL": "s3://ftcn/service",
                "FTCN_S3_ENDPOINT_URL": endpoint, **credentials}, list_objects)


@pytest.fixture(scope="module", params=["embedded", "postgresql+s3"])
def service(request, tmp_path_factory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    with redis_server() as redis_url, backing_stores(request.param, root) as (stores, list_files):
        env = {**stores, "FTCN_REDIS_URL": redis_url, "FTCN_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
               "FTCN_URL_ALLOWLIST": "localhost", "FTCN_SECRET_KEY": "test-secret",
               "FTCN_SUBMIT_RATE_LIMIT": "100000/minute",  # limits have their own test (test_access)
               "FTCN_DIRECT_UPLOAD_MB": "0"}  # ftcn-client uses direct uploads for every file here
        settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("FTCN_")})
        app = create_app(settings)
        with http_app(app) as base, celery_worker(env) as worker:
            deadline = time.monotonic() + 90
            while requests.get(base + "/readyz", timeout=10).status_code != 200:
                assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]
                assert time.monotonic() < deadline, requests.get(base + "/readyz", timeout=10).json()
                time.sleep(1)
            token = make_token(settings, "e2e-owner", "e2e", train=True)
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token}"
            yield Service(base, settings, list_files, worker.log_path, http, token, app)


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("synth")
    assert ftcn_main(["synth", str(folder), "--videos", "12", "--seed", "2", "--frames", "32"]) == 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for video in sorted(folder.rglob("*.mp4")):
            bundle.write(video, f"my-dataset/{video.relative_to(folder).as_posix()}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained_model(service: Service, dataset_zip: bytes) -> str:
    options = json.dumps({"max_clips": 4, "val": 0.34, "test": 0.0})
    answer = service.http.post(service.url("/jobs/preprocess"), files={"archive": ("data.zip", dataset_zip)},
                           data={"options": options}, timeout=30)
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"/jobs/{answer.json()['id']}"
    job = service.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    dataset_id = job["result"]["dataset_id"]
    assert dataset_id in [d["id"] for d in service.http.get(service.url("/datasets"), timeout=10).json()["items"]]

    answer = service.http.post(service.url("/jobs/train"), json={"dataset_id": dataset_id, "freeze": True, "epochs": 2,
                                                             "make_default": True, "name": "e2e"}, timeout=30)
    assert answer.status_code == 202, answer.text
    job = service.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    model_id = job["result"]["model_id"]
    assert set(job["links"]) >= {"checkpoint", "loss_plot", "auc_plot"}
    models = service.http.get(service.url("/models"), timeout=10).json()["items"]
    assert [m["id"] for m in models if m["default"]] == [model_id]
    return model_id


def test_the_worker_warms_up_when_it_starts(service: Service) -> None:
    """Each pool process prepares the face backend and the shared default model as it starts, beside its first
    jobs (``worker.app._warm_up``); this worker started before any model was registered."""
    deadline = time.monotonic() + 60
    while "warm-up: " not in (log := Path(service.worker_log).read_text()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.5)
    first = next(line for line in log.splitlines() if "warm-up: " in line)
    assert "warm-up: no default model; face backend mtcnn ready in" in first, first


def test_predict_with_the_trained_model(service: Service, trained_model: str, tmp_path: Path) -> None:
    answer = service.http.post(service.url("/jobs/predict"), data={"model_id": trained_model},
                           files={"video": ("talking.mp4", TALKING_FACE.read_bytes(), "video/mp4")}, timeout=30)
    assert answer.status_code == 202, answer.text
    job = service.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["verdict"] in ("REAL", "FAKE") and job["result"]["model_id"] == trained_model
    assert job["progress"] == 100.0
    result = requests.get(service.url(job["links"]["result"]), timeout=10).json()
    assert len(result["tracks"]) == 1 and result["input"]["frames_read"] == 120
    video = requests.get(service.url(job["links"]["annotated_video"]), timeout=30)
    assert video.status_code == 200
    (tmp_path / "annotated.mp4").write_bytes(video.content)
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 120
    link = job["links"]["annotated_video"]
    if link.startswith("/files/"):  # our own signed links (S3 checks its presigned ones itself; moto does not)
        assert requests.get(service.url(link.replace("signature=", "signature=0")), timeout=10).status_code == 403


def test_client_status_and_download(service: Service, trained_model: str, tmp_path: Path, capsys) -> None:
    from api.client import main as client_main

    code = client_main(["--api", service.base, "--token", service.token, "predict", str(TALKING_FACE), "--model-id", trained_model, "--wait"])
    assert code == 0
    capsys.readouterr()
    listing = service.http.get(service.url("/jobs?kind=predict&status=succeeded&limit=1"), timeout=10).json()
    job_id = listing["items"][0]["id"]
    assert client_main(["--api", service.base, "--token", service.token, "status", job_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert client_main(["--api", service.base, "--token", service.token, "download", job_id, "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated_video.mp4", "face_0.jpg", "result.json",
                                                          "timeline.png"]
    assert client_main(["--api", service.base, "--token", service.token, "status", "no-such-job"]) == 2
    assert "404" in capsys.readouterr().err


def test_idempotency_key(service: Service, trained_model: str) -> None:
    body = {"video_url": "http://localhost:1/nothing.mp4", "model_id": trained_model}
    first = service.http.post(service.url("/jobs/predict"), json=body, headers={"Idempotency-Key": "k-1"}, timeout=10)
    again = service.http.post(service.url("/jobs/predict"), json=body, headers={"Idempotency-Key": "k-1"}, timeout=10)
    assert first.status_code == 202 and again.status_code == 200 and first.json()["id"] == again.json()["id"]
    other = service.http.post(service.url("/jobs/predict"), json={**body, "video_url": "http://localhost:2/x.mp4"},
                          headers={"Idempotency-Key": "k-1"}, timeout=10)
    assert other.status_code == 409 and other.headers["Content-Type"] == "application/problem+json"
    failed = service.wait(first.json()["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "bad-url"


@pytest.mark.parametrize("case", ["empty upload", "not json", "unknown field", "unknown job", "unknown model",
                                  "unknown dataset", "loopback url", "metadata url", "file url", "too large",
                                  "wrong file type", "photo named mp4"])
def test_bad_requests_change_nothing(service: Service, trained_model: str, case: str) -> None:
    before = service.counts()
    post = service.url("/jobs/predict")
    sends = {
        "empty upload": lambda: service.http.post(post, files={"video": ("a.mp4", b"")}),
        "not json": lambda: service.http.post(post, data=b"{not json", headers={"Content-Type": "application/json"}),
        "unknown field": lambda: service.http.post(post, json={"video_url": "https://example.com/a.mp4", "x": 1}),
        "unknown job": lambda: service.http.get(service.url("/jobs/00000000-0000-0000-0000-000000000000")),
        "unknown model": lambda: service.http.post(post, json={"video_url": "http://localhost:1/a.mp4",
                                                               "model_id": "missing"}),
        "unknown dataset": lambda: service.http.post(service.url("/jobs/train"), json={"dataset_id": "missing"}),
        "loopback url": lambda: service.http.post(post, json={"video_url": "http://127.0.0.1:8080/a.mp4"}),
        "metadata url": lambda: service.http.post(post, json={"video_url": "http://169.254.169.254/latest/"}),
        "file url": lambda: service.http.post(post, json={"video_url": "file:///etc/passwd"}),
        "too large": lambda: service.http.post(post, files={"video": ("a.mp4", b"\0" * (MAX_UPLOAD_MB + 1) * 2**20)}),
        "wrong file type": lambda: service.http.post(post, files={"video": ("a.exe", b"MZ")}),
        "photo named mp4": lambda: service.http.post(post, files={"video": ("a.mp4", FACE_PHOTO.read_bytes())}),
    }
    expected = {"empty upload": (400, "empty-upload"), "not json": (400, "malformed-json"),
                "unknown field": (422, "invalid-request"), "unknown job": (404, "not-found"),
                "unknown model": (404, "not-found"), "unknown dataset": (404, "not-found"),
                "loopback url": (422, "unsafe-url"), "metadata url": (422, "unsafe-url"),
                "file url": (422, "unsafe-url"), "too large": (413, "too-large"),
                "wrong file type": (415, "unsupported-file"), "photo named mp4": (422, "not-a-video")}
    answer = sends[case]()
    status, slug = expected[case]
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/" + slug) and answer.json()["detail"]
    assert service.counts() == before


def test_bad_inputs_that_fail_the_job_with_a_reason(service: Service, trained_model: str) -> None:
    not_video = service.http.post(service.url("/jobs/predict"), files={"video": ("clip.mp4", b"just text\n" * 50)},
                              timeout=10)
    job = service.wait(not_video.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "invalid-video" and "not a readable video" in \
        job["error"]["message"]
    still = write_video(Path(tempfile.mkdtemp()) / "still.mp4", [face_photo()[:256, :256]])  # one frame
    single = service.http.post(service.url("/jobs/predict"), files={"video": ("still.mp4", still.read_bytes())},
                               timeout=10)
    job = service.wait(single.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "not-a-video" and "single frame" in \
        job["error"]["message"]

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("real/a.mp4", b"x")
        bundle.writestr("../../escape.mp4", b"x")
    traversal = service.http.post(service.url("/jobs/preprocess"), files={"archive": ("d.zip", buffer.getvalue())},
                              timeout=10)
    job = service.wait(traversal.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "bad-archive" and "unsafe path" in \
        job["error"]["message"]
    assert not [f for f in service.list_files() if "escape" in f]


def test_redirect_to_a_private_address_fails_the_job(service: Service, trained_model: str) -> None:
    routes = {"/clip.mp4": (302, {"Location": "http://10.0.0.1/internal.mp4"}, b"")}
    with http_server(routes) as base:
        port = base.rsplit(":", 1)[1]
        answer = service.http.post(service.url("/jobs/predict"),  # localhost is allow-listed, its redirect target not
                               json={"video_url": f"http://localhost:{port}/clip.mp4"}, timeout=10)
        assert answer.status_code == 202, answer.text
        job = service.wait(answer.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "bad-url" and "10.0.0.1" in job["error"]["message"]


def test_preprocess_from_an_s3_prefix(service: Service, dataset_zip: bytes) -> None:
    if not service.settings.storage_url.startswith("s3://"):
        pytest.skip("the s3:// source needs the S3 backend of this module")
    import boto3

    client = boto3.client("s3", endpoint_url=service.settings.s3_endpoint_url)
    with zipfile.ZipFile(io.BytesIO(dataset_zip)) as bundle:
        for name in bundle.namelist()[:6] + bundle.namelist()[-6:]:
            client.put_object(Bucket="ftcn", Key=f"uploads/{name}", Body=bundle.read(name))
    answer = service.http.post(service.url("/jobs/preprocess"), timeout=10, json={
        "s3_prefix": "s3://ftcn/uploads/", "options": {"max_clips": 2, "val": 0.34}})
    assert answer.status_code == 202, answer.text
    job = service.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["videos"] == 12 and job["result"]["clips"] > 0


def test_job_listing_cancel_and_openapi(service: Service, trained_model: str) -> None:
    listing = service.http.get(service.url("/jobs?kind=predict&limit=2"), timeout=10).json()
    assert listing["limit"] == 2 and len(listing["items"]) <= 2 and all(j["kind"] == "predict" for j in listing["items"])
    finished = listing["items"][0]["id"]
    answer = service.http.post(service.url(f"/jobs/{finished}/cancel"), timeout=10)
    assert answer.status_code == 409 and "cannot become canceled" in answer.json()["detail"]
    document = service.http.get(service.url("/openapi.json"), timeout=10).json()
    assert document["openapi"].startswith("3.") and "/jobs/predict" in document["paths"]
    assert service.http.get(service.url("/healthcheck"), timeout=10).json() == {"status": "ok", "healthy": True}
    deep = service.http.get(service.url("/healthcheck?deep=1"), timeout=10).json()
    assert all(check["ok"] for check in deep["checks"].values())


def test_registered_retinaface_weights_do_the_work(service: Service, trained_model: str, tmp_path: Path) -> None:
    """Without registered weights RetinaFace is refused at submission; once an operator registers them (recipe
    weights in the official formats here), jobs use them by default and result.json names them."""
    from sqlalchemy.orm import sessionmaker

    from jobs.admin import register_detector
    from jobs.db import make_engine, session_scope
    from jobs.models import Detector
    from tests.parity_recipe import write_recipe_detector_files

    post = service.url("/jobs/predict")
    listed = service.http.get(service.url("/detectors"), timeout=10).json()["items"]
    assert [(d["backend"], d["default"]) for d in listed] == [("mtcnn", True), ("dlib", False)]
    refused = service.http.post(post, json={"video_url": "http://localhost:1/a.mp4",  # localhost: allow-listed
                                            "options": {"backend": "retinaface"}}, timeout=10)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/unknown-backend")
    unknown = service.http.post(post, json={"video_url": "http://localhost:1/a.mp4", "options": {"backend": "blazeface"}},
                                timeout=10)
    assert unknown.status_code == 422

    detector_file, landmark_file = write_recipe_detector_files(tmp_path)
    detector_id = register_detector(service.settings, detector_file, landmark_file, "recipe weights", default=True)
    try:
        listed = service.http.get(service.url("/detectors"), timeout=10).json()["items"]
        default = [d for d in listed if d["default"]]
        assert [d["id"] for d in default] == [detector_id] and default[0]["backend"] == "retinaface"
        answer = service.http.post(post, data={"model_id": trained_model, "options": '{"max_frames": 12}'},
                                   files={"video": ("talking.mp4", TALKING_FACE.read_bytes(), "video/mp4")}, timeout=30)
        assert answer.status_code == 202, answer.text
        assert answer.json()["params"]["options"]["backend"] == "retinaface"
        job = service.wait(answer.json()["id"])
        assert job["status"] == "succeeded", job
        assert job["result"]["backend"] == "retinaface"
        result = requests.get(service.url(job["links"]["result"]), timeout=10).json()
        assert result["faces"]["backend"] == "retinaface" and result["faces"]["detect_every"] == 1
        weights = result["faces"]["weights"]
        assert weights["detector_id"] == detector_id and weights["name"] == "recipe weights"
        assert weights["files"]["retinaface"]["sha256"] == default[0]["files"]["retinaface"]["sha256"]
    finally:
        with session_scope(sessionmaker(make_engine(service.settings.database_url))) as session:
            session.delete(session.get(Detector, detector_id))


def test_erasure_removes_the_input_and_every_artifact(service: Service, trained_model: str) -> None:
    answer = service.http.post(service.url("/jobs/predict"), data={"model_id": trained_model, "reuse": "false"},
                               files={"video": ("my-face.mp4", TALKING_FACE.read_bytes(), "video/mp4")}, timeout=30)
    job = service.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    stored = service.list_files()
    mine = [name for name in stored if f"jobs/{job['id']}/" in name]
    assert any("/input/" in name for name in mine) and any(name.endswith("annotated.mp4") for name in mine)
    link = service.url(job["links"]["annotated_video"])

    for _ in range(2):  # repeating it is harmless
        erased = service.http.delete(service.url(f"/jobs/{job['id']}"), timeout=30)
        assert erased.status_code == 204, erased.text
    assert [name for name in service.list_files() if f"jobs/{job['id']}/" in name] == []
    assert sorted(service.list_files()) == sorted(set(stored) - set(mine))  # nothing else was touched
    after = service.http.get(service.url(f"/jobs/{job['id']}"), timeout=10).json()
    assert after["status"] == "succeeded" and after["erased_reason"] == "owner" and after["erased_at"].endswith("Z")
    assert after["result"]["verdict"] == job["result"]["verdict"] and after["links"] == {}
    assert "filename" not in after["params"] and "input_key" not in after["params"]
    assert requests.get(link, timeout=10).status_code in (403, 404)
    other = make_token(service.settings, "someone-else", "other")
    refused = requests.delete(service.url(f"/jobs/{job['id']}"), headers={"Authorization": f"Bearer {other}"},
                              timeout=10)
    assert refused.status_code == 404


def _curl(command: str, service: Service) -> tuple[int, dict]:
    """Run one of the reference README's curl lines, its host made ours and our token added; (status, body)."""
    argv = shlex.split(command.replace("http://localhost:8000", service.base))
    argv[1:1] = ["-s", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {service.token}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
    body, status = done.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def test_the_reference_servers_curl_commands(service: Service, trained_model: str) -> None:
    """The FTCN reference server's README, verbatim apart from host and token: the same requests, the same answer
    shape (plus the job's id)."""
    status, health = _curl("curl -X GET http://localhost:8000/healthcheck", service)
    assert status == 200 and health["healthy"] is True
    with http_server({"/video.mp4": (200, {"Content-Type": "video/mp4"}, TALKING_FACE.read_bytes())}) as files:
        url = files.replace("127.0.0.1", "localhost") + "/video.mp4"  # localhost is allow-listed in this stack
        status, answer = _curl("curl -X POST http://localhost:8000/predict -H \"Content-Type: application/json\" "
                               f"--data '{{\"file_path\":\"{url}\"}}'", service)
        assert status == 200, answer
        assert answer["prediction"] in ("REAL", "FAKE") and 0.0 <= answer["df_probability"] <= 1.0
        assert answer["start_time"].endswith("Z") and answer["end_time"] >= answer["start_time"]
        job = service.http.get(service.url(f"/jobs/{answer['job_id']}"), timeout=10).json()
        assert job["result"]["verdict"] == answer["prediction"] and job["result"]["score"] == answer["df_probability"]
        assert job["params"]["video_url"] == url

        # a job that takes longer than the wait: 202 and where to follow it
        state = service.app.extensions["ftcn"]
        patient = state.settings
        state.settings = dataclasses.replace(patient, predict_wait_s=0.01)
        try:
            slow = service.http.post(service.url("/predict"), json={"file_path": url, "max_frames": 60}, timeout=30)
        finally:
            state.settings = patient
        assert slow.status_code == 202 and slow.headers["Location"] == f"/jobs/{slow.json()['id']}"
        assert slow.json()["params"]["options"]["max_frames"] == 60
        assert service.wait(slow.json()["id"])["status"] == "succeeded"

    for bad in ("/etc/passwd", "ftp://localhost/video.mp4", "http://169.254.169.254/latest/meta-data"):
        answer = service.http.post(service.url("/predict"), json={"file_path": bad}, timeout=30)
        assert 400 <= answer.status_code < 500 and answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["detail"], answer.json()


def _direct(service: Service, payload: bytes, name: str = "big.mp4") -> str:
    target = service.http.post(service.url("/uploads"), json={"filename": name}, timeout=10)
    assert target.status_code == 201, target.text
    target = target.json()
    assert target["expires_at"].endswith("Z") and target["method"] == "PUT"
    put = requests.put(service.url(target["url"]), data=payload, headers=target["headers"], timeout=60)
    assert put.status_code in (200, 204), put.text
    return target["upload_id"]


def test_direct_upload_end_to_end(service: Service, trained_model: str, tmp_path: Path) -> None:
    upload_id = _direct(service, TALKING_FACE.read_bytes())
    assert any(f"uploads/{upload_id}/" in name for name in service.list_files())
    answer = service.http.post(service.url("/jobs/predict"), json={"upload_id": upload_id}, timeout=30)
    assert answer.status_code == 202, answer.text
    job = service.wait(answer.json()["id"])
    assert job["status"] == "succeeded" and job["result"]["verdict"] in ("REAL", "FAKE"), job
    assert job["params"]["filename"] == "big.mp4"
    stored = service.list_files()
    assert not any(f"uploads/{upload_id}/" in name for name in stored)  # moved under the job: erasure takes it
    assert any(f"jobs/{job['id']}/input/video.mp4" in name for name in stored)

    again = service.http.post(service.url("/jobs/predict"), json={"upload_id": upload_id}, timeout=30)
    assert again.status_code == 409 and again.json()["type"].endswith("/upload-used")
    other = make_token(service.settings, "another-owner", "other")
    theirs = requests.post(service.url("/jobs/predict"), json={"upload_id": _direct(service, b"x")},
                           headers={"Authorization": f"Bearer {other}"}, timeout=30)
    assert theirs.status_code == 404  # an upload is its owner's alone

    checks = {"photo.mp4": (FACE_PHOTO.read_bytes(), 422, "not-a-video"),
              "text.mp4": (b"just some text, not a container" * 10, 415, "unsupported-file")}
    for name, (payload, status, slug) in checks.items():
        refused = service.http.post(service.url("/jobs/predict"), json={"upload_id": _direct(service, payload, name)},
                                    timeout=30)
        assert refused.status_code == status and refused.json()["type"].endswith("/" + slug), refused.text
    empty = service.http.post(service.url("/uploads"), json={"filename": "later.mp4"}, timeout=10).json()
    missing = service.http.post(service.url("/jobs/predict"), json={"upload_id": empty["upload_id"]}, timeout=30)
    assert missing.status_code == 409 and missing.json()["type"].endswith("/upload-missing")
    assert service.http.post(service.url("/uploads"), json={"filename": "x.exe"}, timeout=10).status_code == 415
    both = service.http.post(service.url("/jobs/predict"), json={"upload_id": upload_id, "video_url": "https://x/y"},
                             timeout=10)
    assert both.status_code == 422
    if empty["url"].startswith("/uploads/"):  # our own signed PUT target (S3 checks its presigned ones itself)
        forged = service.url(empty["url"].replace("signature=", "signature=0"))
        assert requests.put(forged, data=b"x", headers=empty["headers"], timeout=10).status_code == 403


def test_client_switches_to_direct_upload(service: Service, trained_model: str) -> None:
    from api.client import Client

    client = Client(service.base, service.token)
    job = client.wait(client.predict(str(TALKING_FACE))["id"])
    assert job["status"] == "succeeded" and job["params"].get("upload_id"), job
