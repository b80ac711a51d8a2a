"""Each Dockerfile rehearsed from its own lines (tests/images.py): its tree, its pip lines, its commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.images import (ROOT, Image, RehearsalError, build_tree, cpu_torch, parse_dockerfile, supported_python,
                          supported_torch, tail)
from tests.media import TALKING_FACE
from tests.servers import free_port, redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_api_image_holds_no_ml_stack(api_image: Image) -> None:
    for module in ("torch", "numpy", "cv2", "av", "dlib", "openvino"):
        assert not api_image.has_module(module), f"the API image installs {module}"
    assert api_image.has_module("gunicorn") and api_image.has_module("psycopg")


def test_worker_image_runs_the_supported_python_and_torch(worker_image: Image) -> None:
    probe = ("import json, sys, torch, dlib, openvino, face_recognition_models, ftcn\n"
             "from ftcn.faces.dlib_backend import face_recognition_models_dir\n"
             "from ftcn.models.mtcnn import load_mtcnn\n"
             "load_mtcnn()  # the default detector's weights, from the facenet-pytorch wheel, digests checked\n"
             "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'torch': torch.__version__.split('+')[0],"
             " 'models': sorted(p.name for p in face_recognition_models_dir().glob('*.dat'))}))")
    done = worker_image.run(["python", "-c", probe])
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["python"] == supported_python() and found["torch"] == supported_torch()
    assert {"shape_predictor_68_face_landmarks.dat", "mmod_human_face_detector.dat"} <= set(found["models"])


def test_the_detector_weights_wheel_is_pinned_alike_everywhere() -> None:
    """The Makefile (development and CI) and the worker image install the facenet-pytorch release whose weight
    digests ftcn.models.mtcnn checks."""
    from ftcn.models.mtcnn import WEIGHTS_DISTRIBUTION, WEIGHTS_VERSION

    pin = f"{WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION}"
    assert f"MTCNN_WEIGHTS ?= {pin}" in (ROOT / "Makefile").read_text()
    worker = parse_dockerfile(ROOT / "Dockerfile.worker")
    assert ["pip", "install", "--only-binary=:all:", "--no-deps", pin] in worker.pip_installs()


def test_a_cuda_torch_of_another_version_is_refused() -> None:
    line = ["pip", "install", "--index-url", "https://download.pytorch.org/whl/cu124", "torch==2.5.1"]
    with pytest.raises(RehearsalError, match="supports"):
        cpu_torch(line, "2.13.0")
    assert cpu_torch(line[:-1] + ["torch==2.13.0"], "2.13.0") == ["pip", "install", "torch==2.13.0"]


def test_dockerfile_lines_are_read_as_docker_reads_them() -> None:
    api = parse_dockerfile(ROOT / "Dockerfile.api")
    assert api.cmd[:2] == ["sh", "-c"] and "gunicorn" in api.cmd[2]
    assert api.healthcheck[:2] == ["sh", "-c"] and api.user == "ftcn" and api.workdir == "/app"
    assert (["requirements/api.txt"], "requirements/api.txt") in api.copies
    worker = parse_dockerfile(ROOT / "Dockerfile.worker")
    assert worker.healthcheck[:2] == ["/bin/sh", "-c"] and "inspect ping" in worker.healthcheck[2]
    assert worker.cmd[:3] == ["celery", "-A", "worker"]
    assert ".[service]" in [argv[-1] for argv in worker.pip_installs()]


def _api_answers(image: Image, tmp_path: Path, redis_url: str) -> tuple[tuple[int, int] | int, str]:
    """Start the image's CMD (SQLite, local storage, the given Redis) on a free SERVER_PORT; the status of
    /healthcheck once it listens, and /readyz's (its own readiness: no worker runs here), or its exit code and its
    log when it dies first."""
    port, log = free_port(), tmp_path / "api.log"
    env = {"SERVER_PORT": str(port), "FTCN_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "FTCN_STORAGE_URL": (tmp_path / "store").as_uri(), "FTCN_REDIS_URL": redis_url}
    migrate = image.run(["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"], env)
    if migrate.returncode != 0:
        log.write_text(f"migrate exited with {migrate.returncode}: {migrate.stderr}\n")
    process = image.start(image.dockerfile.cmd, log, env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return process.returncode, tail(log)
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=5).status_code
                ready = requests.get(f"http://127.0.0.1:{port}/readyz?workers=optional", timeout=10)
                return (health, ready.status_code), ready.text + "\n" + tail(log)
            except requests.ConnectionError:
                time.sleep(0.3)
        return -1, tail(log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)


def test_the_api_image_starts_on_server_port(api_image: Image, tmp_path: Path) -> None:
    with redis_server() as redis_url:
        status, log = _api_answers(api_image, tmp_path, redis_url)
    assert status == (200, 200), log


def test_a_module_the_image_does_not_copy_fails_the_rehearsal(api_image: Image, tmp_path: Path) -> None:
    """The Dockerfile as it was before the ML library was copied: the API cannot import ``ftcn``."""
    text = (ROOT / "Dockerfile.api").read_text().replace("COPY ftcn/ ftcn/\n", "")
    assert "COPY ftcn/" not in text
    dockerfile = parse_dockerfile(ROOT / "Dockerfile.api", text)
    workdir = build_tree(ROOT, dockerfile, tmp_path / "rootfs")
    image = Image(dockerfile, workdir, api_image.venv, api_image.log)
    with redis_server() as redis_url:
        status, log = _api_answers(image, tmp_path, redis_url)
    assert status != (200, 200)
    assert "No module named 'ftcn'" in log  # gunicorn prints the ModuleNotFoundError's message


@pytest.mark.skipif(os.geteuid() != 0, reason="network, mount and UTS namespaces need root (CI runs as root)")
def test_compose_walkthrough(api_image: Image, worker_image: Image, trained_checkpoint: Path,
                             tmp_path: Path) -> None:
    """docker-compose.yml's services as local processes, each with compose's environment, then the README's
    compose walkthrough from the host: submit, poll, open the annotated video's link."""
    images = [f"Dockerfile.api={api_image.venv.parent}", f"Dockerfile.worker={worker_image.venv.parent}"]
    command = ["unshare", "--net", "--", sys.executable, "-m", "tests.compose_run", "--root", str(ROOT),
               "--env-file", str(ROOT / ".env.example"), "--checkpoint", str(trained_checkpoint),
               "--video", str(TALKING_FACE), "--logs", str(tmp_path / "logs")]
    for image in images:
        command += ["--image", image]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, json.dumps(report, indent=1)[-6000:]
    steps = [step["step"] for step in report["steps"]]
    assert "annotated video fetched from the host" in steps and "migrate ran to completion" in steps
    assert report["annotated_link_host"] == "localhost:9000"
