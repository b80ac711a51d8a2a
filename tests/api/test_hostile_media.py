"""Hostile media on the real stack (a real API, Redis and a Celery worker; the files served by a real HTTP server):
every file of the corpus (``tests/hostile_media.py``) ends as a failed job with its code and a clear message, the
worker survives and runs the next job normally, and the caged decoder's environment holds none of the worker's
settings or credentials, in a network namespace of its own (``ftcn.video.cage``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import torch

from api import create_app
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.hostile_media import CORPUS
from tests.media import TALKING_FACE
from tests.servers import celery_worker, free_port, http_app, http_server, redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "not-for-the-decoder-7c1f"
#: Enough for every ordinary file here (the sample decodes within 320 MB), too little for the decoding bomb's 4K
#: frames (it needs between 448 and 512 MB since the decoder ships 4:2:0 planes instead of RGB).
MEMORY_MB = 384


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("hostile")
    corpus = folder / "corpus"
    corpus.mkdir()
    files = {name: make(corpus) for name, (make, _) in CORPUS.items()}
    routes = {f"/{path.name}": (200, {"Content-Type": "video/mp4"}, path.read_bytes()) for path in files.values()}
    routes["/sample.mp4"] = (200, {"Content-Type": "video/mp4"}, TALKING_FACE.read_bytes())
    with redis_server() as redis_url, http_server(routes) as media:
        env = {"FTCN_DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
               "FTCN_STORAGE_URL": (folder / "storage").as_uri(), "FTCN_URL_ALLOWLIST": "127.0.0.1",
               "FTCN_SECRET_KEY": SECRET, "FTCN_DECODE_MEMORY_MB": str(MEMORY_MB), "FTCN_DECODE_CPU_S": "120",
               "FTCN_SUBMIT_RATE_LIMIT": "100000/minute", "FTCN_WORKER_METRICS_PORT": str(free_port()),
               "AWS_SECRET_ACCESS_KEY": SECRET}
        settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("FTCN_")})
        app = create_app(settings)
        torch.manual_seed(0)  # plumbing only: this untrained model's verdicts are not under test
        register_model(settings, save_checkpoint(folder / "tiny.pt", build_model(tiny_config())), "tiny",
                       default=True)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {make_token(settings, 'stranger')}"
        with http_app(app) as base, celery_worker(env) as worker:
            deadline = time.monotonic() + 120
            while requests.get(base + "/readyz", timeout=10).status_code != 200:
                assert worker.poll() is None and time.monotonic() < deadline, Path(worker.log_path).read_text()
                time.sleep(1)
            yield {"base": base, "http": http, "media": media, "files": files, "worker": worker}


def _children(parent_of: Any) -> list[int]:
    """Pids of caged decoders running now under the worker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"ftcn.video.child" in (entry / "cmdline").read_bytes() and parent_of(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            return False
    return False


def _decoding(pid: int) -> bool:
    """Whether the process has a job's input open (the decoder opens it only once it is locked in)."""
    return any("input.mp4" in os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_every_hostile_file_fails_its_job_and_nothing_else(stack: dict[str, Any]) -> None:
    http, base, worker = stack["http"], stack["base"], stack["worker"]
    ids = {name: http.post(base + "/jobs/predict", timeout=30, json={
        "video_url": f"{stack['media']}/{path.name}"}).json()["id"] for name, path in stack["files"].items()}
    after = http.post(base + "/jobs/predict", timeout=30, json={"video_url": f"{stack['media']}/sample.mp4",
                                                                "options": {"max_frames": 24}}).json()["id"]
    environments, namespaces = [], set()
    deadline = time.monotonic() + 600
    while True:
        for pid in _children(lambda pid: _descends_from(pid, worker.pid)):
            try:
                environments.append(Path(f"/proc/{pid}/environ").read_bytes())
                if _decoding(pid):  # it has the file open: it locked itself in before opening it
                    namespaces.add(os.readlink(f"/proc/{pid}/ns/net"))
            except OSError:
                pass  # it ended between the listing and the reading
        jobs = {name: http.get(f"{base}/jobs/{job_id}", timeout=10).json() for name, job_id in
                {**ids, "after": after}.items()}
        if all(job["status"] in ("succeeded", "failed", "canceled") for job in jobs.values()):
            break
        assert time.monotonic() < deadline, {n: j["status"] for n, j in jobs.items()}
        time.sleep(0.05)
    for name, (_, code) in CORPUS.items():
        job = jobs[name]
        assert job["status"] == "failed" and job["error"]["code"] == code, (name, job["error"])
        message = job["error"]["message"]
        assert message and "/tmp" not in message and "/work" not in message, (name, message)
    assert "memory" in jobs["decoding bomb"]["error"]["message"]
    assert jobs["after"]["status"] == "succeeded", jobs["after"]  # the worker went on as if nothing happened
    assert worker.poll() is None
    assert environments, "no decoder child was caught running"
    for environ in environments:
        assert SECRET.encode() not in environ and b"FTCN_" not in environ and b"AWS_" not in environ, environ
    assert namespaces, "no decoder was caught with its file open"
    assert os.readlink("/proc/self/ns/net") not in namespaces  # the decoders were in network namespaces of their own
    left = [pid for pid in _children(lambda pid: True) if _decoding(pid)]  # none left at work (a spare may wait)
    assert left == []
    rss = max(_peak_rss_mb(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()
              and _descends_from(int(p.name), worker.pid) and int(p.name) != worker.pid)
    print(f"HOSTILE-FIGURES worker pool peak RSS {rss:.0f} MB; decoder memory limit {MEMORY_MB} MB")
    assert rss < 1500
