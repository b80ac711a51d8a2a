"""A worker killed with SIGKILL in the middle of a predict job: the job is redelivered to the next worker and ends
succeeded, with exactly one set of results stored."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests
import torch

from api import create_app
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.media import TALKING_FACE
from tests.servers import celery_worker, http_app, redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_killed_worker_job_is_redelivered(tmp_path: Path) -> None:
    with redis_server() as redis_url:
        storage = tmp_path / "storage"
        env = {"FTCN_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
               "FTCN_STORAGE_URL": storage.as_uri(), "FTCN_VISIBILITY_TIMEOUT_S": "4",
               "FTCN_HEARTBEAT_S": "1", "FTCN_RECONCILE_INTERVAL_S": "2"}
        settings = Settings.from_env(env)
        app = create_app(settings)
        torch.manual_seed(0)  # plumbing only: the verdict of this untrained model is not under test
        checkpoint = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_config()), metadata={"purpose": "test"})
        register_model(settings, checkpoint, "tiny-test", default=True)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {make_token(settings, 'crash-test')}"
        with http_app(app) as base:
            with celery_worker(env) as first:
                answer = http.post(base + "/jobs/predict", data={"options": '{"max_frames": 48}'},
                                       files={"video": ("talking.mp4", TALKING_FACE.read_bytes())}, timeout=30)
                job_id = answer.json()["id"]
                deadline = time.monotonic() + 120
                while True:
                    job = http.get(f"{base}/jobs/{job_id}", timeout=10).json()
                    if job["status"] == "running" and job["progress"] > 0:
                        break
                    assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
                    time.sleep(0.05)
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=30)
            assert http.get(f"{base}/jobs/{job_id}", timeout=10).json()["status"] == "running"
            with celery_worker(env) as second:
                deadline = time.monotonic() + 180
                while (job := http.get(f"{base}/jobs/{job_id}", timeout=10).json())["status"] in ("queued",
                                                                                                     "running"):
                    assert time.monotonic() < deadline, Path(second.log_path).read_text()[-3000:]
                    time.sleep(0.5)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        stored = sorted(p.relative_to(storage / "jobs" / job_id).as_posix()
                        for p in (storage / "jobs" / job_id).rglob("*") if p.is_file())
        assert stored == ["annotated.mp4", "faces/0.jpg", "input/video.mp4", "result.json", "timeline.png"]
