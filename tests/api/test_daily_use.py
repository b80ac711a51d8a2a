"""The service in daily use, on the real stack: a real API over HTTP, a real Redis, two real Celery worker
processes, real HTTP servers for videos and webhooks started here.

- a finished video sent again is answered at once from the first job (reuse), and erasing the first job erases
  what the answer linked to;
- a 200-video labelled batch reports its AUC through ``GET /batches/<id>`` and its webhook;
- fair sharing: user A sends 50 jobs, then user B one; B's job starts within one job's time, and A never holds
  more than ``FTCN_MAX_RUNNING_PER_OWNER`` workers;
- a video longer than ``FTCN_SEGMENT_S`` is analysed in segments on both workers and merged into the result of one
  run (same tracks, scores within 0.01), and a worker killed in the middle of a segment loses nothing.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import pytest
import requests
import torch
from sqlalchemy import select
from standardwebhooks import Webhook

from api import create_app
from ftcn.checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint
from ftcn.cli import main as ftcn_main
from ftcn.faces.backends import make_backend
from ftcn.models import build_model, tiny_config
from ftcn.predict.pipeline import PredictOptions, predict_video
from ftcn.synth.generate import looped_sample
from ftcn.training.metrics import roc_auc
from ftcn.video.decode import VideoLimits
from jobs.db import make_engine
from jobs.models import Segment
from jobs.admin import make_token, make_token_secrets, register_model
from jobs.settings import Settings
from tests.media import TALKING_FACE
from tests.servers import WebhookReceiver, celery_worker, free_port, http_app, http_server, redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CAP = 2  # FTCN_MAX_RUNNING_PER_OWNER, as many as there are workers
BATCH = 200
SEGMENT_S = 5  # FTCN_SEGMENT_S: the sample (4 s) runs whole, the looped long videos in segments


def _session(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("daily")
    with redis_server() as redis_url:
        env = {"FTCN_DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
               "FTCN_STORAGE_URL": (folder / "storage").as_uri(), "FTCN_URL_ALLOWLIST": "127.0.0.1",
               "FTCN_MAX_RUNNING_PER_OWNER": str(CAP), "FTCN_WEBHOOK_POLL_S": "0.3",
               "FTCN_HEARTBEAT_S": "2", "FTCN_RECONCILE_INTERVAL_S": "5",
               "FTCN_SUBMIT_RATE_LIMIT": "100000/minute", "FTCN_RATE_LIMIT": "100000/minute",
               "FTCN_SEGMENT_S": str(SEGMENT_S)}
        settings = Settings.from_env(env)
        app = create_app(settings)
        torch.manual_seed(0)  # plumbing only: this untrained model's verdicts are not under test
        checkpoint = save_checkpoint(folder / "tiny.pt", build_model(tiny_config()), metadata={"purpose": "test"})
        register_model(settings, checkpoint, "tiny-test", default=True)
        carol, secret = make_token_secrets(settings, "carol")
        sessions = {"alice": _session(make_token(settings, "alice")), "bob": _session(make_token(settings, "bob")),
                    "carol": _session(carol)}
        with http_app(app) as base, \
                celery_worker({**env, "FTCN_WORKER_METRICS_PORT": str(free_port())}) as first, \
                celery_worker({**env, "FTCN_WORKER_METRICS_PORT": str(free_port())}) as second:
            deadline = time.monotonic() + 120
            while requests.get(base + "/readyz", timeout=10).status_code != 200:
                assert first.poll() is None and second.poll() is None, Path(first.log_path).read_text()[-3000:]
                assert time.monotonic() < deadline, requests.get(base + "/readyz", timeout=10).json()
                time.sleep(1)
            yield {"base": base, "settings": settings, "secret": secret, "logs": [first.log_path, second.log_path],
                   "env": env, "checkpoint": checkpoint, **sessions}


def _wait(stack: dict[str, Any], http: requests.Session, path: str, done, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = http.get(stack["base"] + path, timeout=10).json()
        if done(body):
            return body
        time.sleep(0.3)
    logs = "\n".join(Path(log).read_text()[-2000:] for log in stack["logs"])
    raise AssertionError(f"{path} did not get there in {seconds} s: {body}\n{logs}")


def _finished(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "canceled")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _predict(stack: dict[str, Any], who: str, video: Path = TALKING_FACE, **form: str) -> dict[str, Any]:
    answer = stack[who].post(stack["base"] + "/jobs/predict", data=form,
                             files={"video": ("talking.mp4", video.read_bytes(), "video/mp4")}, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_a_finished_video_sent_again_is_answered_at_once(stack: dict[str, Any]) -> None:
    first = _predict(stack, "carol", options='{"max_frames": 48}')
    first = _wait(stack, stack["carol"], f"/jobs/{first['id']}", _finished, 180)
    assert first["status"] == "succeeded", first

    started = time.perf_counter()
    again = _predict(stack, "carol", options='{"max_frames": 48}')
    took = time.perf_counter() - started
    print(f"REUSE-FIGURES answered in {took * 1000:.0f} ms")
    assert took < 0.2, f"the reused answer took {took * 1000:.0f} ms"
    assert again["status"] == "succeeded" and again["reused_from"] == first["id"]
    assert (again["result"]["verdict"], again["result"]["score"]) == (first["result"]["verdict"],
                                                                       first["result"]["score"])
    assert set(again["links"]) == set(first["links"])  # links of its own, signed for it, to the first's files
    for link in again["links"].values():
        assert requests.get(stack["base"] + link, timeout=10).status_code == 200
    assert requests.get(stack["base"] + again["links"]["result"], timeout=10).json()["score"] == \
        first["result"]["score"]

    other_options = _predict(stack, "carol", options='{"max_frames": 40}')  # other options: a run of its own
    forced = _predict(stack, "carol", options='{"max_frames": 48}', reuse="false")
    someone_else = _predict(stack, "bob", options='{"max_frames": 48}')  # reuse is per owner by default
    for job in (other_options, forced, someone_else):
        assert job["status"] == "queued" and job["reused_from"] is None

    assert stack["carol"].delete(stack["base"] + f"/jobs/{first['id']}", timeout=10).status_code == 204
    erased = stack["carol"].get(stack["base"] + f"/jobs/{again['id']}", timeout=10).json()
    assert erased["erased_reason"] == "source-erased" and erased["links"] == {}
    assert erased["result"]["verdict"] == first["result"]["verdict"]  # the verdict summary stays
    for name, link in again["links"].items():  # what the reused job linked to is gone
        assert requests.get(stack["base"] + link, timeout=10).status_code in (403, 404), name
    assert stack["carol"].get(stack["base"] + f"/jobs/{again['id']}/result", timeout=10).status_code == 409
    for job in (other_options, forced, someone_else):
        who = "bob" if job is someone_else else "carol"
        assert _wait(stack, stack[who], f"/jobs/{job['id']}", _finished, 180)["status"] == "succeeded"


@pytest.fixture(scope="module")
def labelled_videos(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, str]]:
    folder = tmp_path_factory.mktemp("synth")
    assert ftcn_main(["synth", str(folder), "--videos", "10", "--seed", "5", "--frames", "32"]) == 0
    return [(path.read_bytes(), path.parent.name) for path in sorted(folder.rglob("*.mp4"))]


def test_a_labelled_batch_reports_its_auc_and_calls_back(stack: dict[str, Any],
                                                         labelled_videos: list[tuple[bytes, str]]) -> None:
    """200 videos by URL (ten distinct ones, each sent 20 times as viral videos are), with labels: the batch's
    report and its webhook give the AUC of the jobs' own scores."""
    routes = {f"/v{i}.mp4": (200, {"Content-Type": "video/mp4"}, labelled_videos[i % len(labelled_videos)][0])
              for i in range(BATCH)}
    receiver = WebhookReceiver().start()
    try:
        with http_server(routes) as videos:
            items = [{"video_url": f"{videos}/v{i}.mp4", "label": labelled_videos[i % len(labelled_videos)][1],
                      "name": f"video {i}"} for i in range(BATCH)]
            answer = stack["carol"].post(stack["base"] + "/batches", timeout=60, json={
                "items": items, "name": "viral", "webhook_url": receiver.url, "options": {"max_frames": 32}})
            assert answer.status_code == 202, answer.text
            assert answer.headers["Location"] == f"/batches/{answer.json()['id']}"
            assert answer.json()["total"] == BATCH and answer.json()["counts"]["queued"] == BATCH
            batch = _wait(stack, stack["carol"], answer.headers["Location"], lambda b: b["status"] == "finished",
                          900)
        deadline = time.monotonic() + 60
        while not receiver.answered() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert receiver.answered(), "no batch.finished webhook"
    finally:
        receiver.stop()
    assert batch["counts"]["succeeded"] == BATCH, batch["counts"]
    scored = [job for job in batch["jobs"] if job["score"] is not None]
    expected = roc_auc([1.0 if job["label"] == "fake" else 0.0 for job in scored], [job["score"] for job in scored])
    assert batch["report"]["auc"] == pytest.approx(expected) and batch["report"]["videos"] == BATCH
    assert sum(job["reused_from"] is not None for job in batch["jobs"]) >= BATCH - 2 * len(labelled_videos)
    headers, body, _ = receiver.received[0]
    event = Webhook(stack["secret"]).verify(body, {k: v for k, v in headers.items() if k.startswith("webhook-")})
    assert event["type"] == "batch.finished" and event["data"]["id"] == batch["id"]
    assert event["data"]["report"]["auc"] == pytest.approx(expected)
    assert [d["status"] for d in stack["carol"].get(stack["base"] + answer.headers["Location"],
                                                    timeout=10).json()["webhook"]["deliveries"]] == ["delivered"]


def test_one_users_many_jobs_do_not_starve_anothers_one(stack: dict[str, Any]) -> None:
    """User A submits 50 jobs, then user B one: B's starts within one job's time, and A's jobs never run on more
    than FTCN_MAX_RUNNING_PER_OWNER workers at once."""
    many = [_predict(stack, "alice", reuse="false")["id"] for _ in range(50)]
    single = _predict(stack, "bob", reuse="false")
    single = _wait(stack, stack["bob"], f"/jobs/{single['id']}", lambda job: job["started_at"] is not None, 600)
    waited = (_moment(single["started_at"]) - _moment(single["created_at"])).total_seconds()
    for job_id in many:  # the rest of A's jobs are not needed
        stack["alice"].post(stack["base"] + f"/jobs/{job_id}/cancel", timeout=10)
    jobs = [_wait(stack, stack["alice"], f"/jobs/{job_id}", _finished, 300) for job_id in many]
    ran = [(_moment(j["started_at"]), _moment(j["finished_at"])) for j in jobs if j["status"] == "succeeded"]
    assert ran, "none of A's jobs ran"
    longest = max((end - start).total_seconds() for start, end in ran)
    print(f"FAIRNESS-FIGURES B waited {waited:.2f} s; A's jobs took up to {longest:.2f} s")
    assert waited <= longest + 1.0, f"B waited {waited:.1f} s; one of A's jobs takes up to {longest:.1f} s"
    moments = sorted([(start, 1) for start, _ in ran] + [(end, -1) for _, end in ran])
    running, most = 0, 0
    for _, change in moments:
        running += change
        most = max(most, running)
    assert most <= CAP, f"A had {most} jobs running at once"


def _segments(stack: dict[str, Any], job_id: str) -> list[Any]:
    engine = make_engine(stack["settings"].database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(Segment.index, Segment.status, Segment.attempts, Segment.worker)
                                           .where(Segment.job_id == job_id).order_by(Segment.index)))
    finally:
        engine.dispose()


def _one_run(stack: dict[str, Any], video: Path) -> dict[str, Any]:
    """The same video through one ``predict_video`` here, with the job's model and options."""
    checkpoint = load_checkpoint(stack["checkpoint"])
    return predict_video(video, model_from_checkpoint(checkpoint), checkpoint, make_backend("dlib"),
                         PredictOptions(limits=VideoLimits(max_duration_s=stack["settings"].max_video_s)))


def _assert_same_as_one_run(merged: dict[str, Any], whole: dict[str, Any]) -> None:
    assert [(t["start_frame"], t["end_frame"]) for t in merged["tracks"]] == \
        [(t["start_frame"], t["end_frame"]) for t in whole["tracks"]]
    assert merged["verdict"] == whole["verdict"] and merged["score"] == pytest.approx(whole["score"], abs=0.01)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return looped_sample(tmp_path_factory.mktemp("long") / "long.mp4", 20.0, 176, 144)


def test_a_long_video_runs_in_segments_across_workers(stack: dict[str, Any], long_video: Path) -> None:
    job = _predict(stack, "carol", long_video, reuse="false")
    job = _wait(stack, stack["carol"], f"/jobs/{job['id']}", _finished, 300)
    assert job["status"] == "succeeded", job
    merged = stack["carol"].get(stack["base"] + f"/jobs/{job['id']}/result", timeout=10).json()
    assert [s["index"] for s in merged["segments"]] == [0, 1, 2, 3] and job["result"]["segments"] == 4
    rows = _segments(stack, job["id"])
    assert {row.status for row in rows} == {"done"} and len({row.worker.split(":")[1] for row in rows}) >= 2, rows
    whole = _one_run(stack, long_video)
    _assert_same_as_one_run(merged, whole)
    with av.open(io.BytesIO(requests.get(stack["base"] + job["links"]["annotated_video"], timeout=30).content)) as c:
        assert sum(1 for _ in c.decode(video=0)) == merged["input"]["frames_read"] == whole["input"]["frames_read"]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_killed_segment_worker_loses_nothing(stack: dict[str, Any], tmp_path: Path) -> None:
    """A third worker is killed (SIGKILL, pool and all) while it runs a segment: that segment alone runs again
    elsewhere, every other segment ran once, and the result is the one-run result."""
    video = looped_sample(tmp_path / "longer.mp4", 40.0, 176, 144)
    with celery_worker({**stack["env"], "FTCN_WORKER_METRICS_PORT": str(free_port())}) as third:
        time.sleep(3)  # its pool is up
        job = _predict(stack, "carol", video, reuse="false")
        deadline, victim = time.monotonic() + 120, None
        while victim is None:
            assert time.monotonic() < deadline, "the third worker never took a segment"
            for row in _segments(stack, job["id"]):
                if row.status == "running" and row.worker and _parent(int(row.worker.split(":")[1])) == third.pid:
                    victim = row.index
            time.sleep(0.1)
        os.killpg(third.pid, signal.SIGKILL)
        third.wait(timeout=30)
    job = _wait(stack, stack["carol"], f"/jobs/{job['id']}", _finished, 300)
    assert job["status"] == "succeeded", job
    attempts = {row.index: row.attempts for row in _segments(stack, job["id"])}
    assert attempts[victim] == 2 and all(n == 1 for index, n in attempts.items() if index != victim), attempts
    merged = stack["carol"].get(stack["base"] + f"/jobs/{job['id']}/result", timeout=10).json()
    _assert_same_as_one_run(merged, _one_run(stack, video))
