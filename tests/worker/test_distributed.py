"""Training beyond one process, on CPU with gloo: ``ftcn train`` under torchrun on the synthetic set, and a train
job that runs in every process of its worker, reports progress and stops when canceled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ftcn.checkpoints import load_model
from ftcn.cli import main as ftcn
from ftcn.checkpoints import weights_digest
from jobs.db import session_scope, upgrade
from jobs.models import Dataset, Job
from jobs.moves import move_job
from jobs.queue import make_celery
from jobs.service import create_job
from jobs.settings import Settings
from jobs.states import JobKind, JobStatus
from tests.datasets import write_clip_dataset
from worker.state import WorkerState
from worker.tasks import execute

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 2


def test_torchrun_trains_one_model_in_two_processes(tmp_path: Path) -> None:
    synth, data, run = tmp_path / "synth", tmp_path / "data", tmp_path / "run"
    assert ftcn(["synth", str(synth), "--videos", "8", "--seed", "2", "--frames", "48"]) == 0
    assert ftcn(["preprocess", str(synth), str(data), "--workers", "2"]) == 0
    assert ftcn(["split", str(data), "--val", "0.25", "--seed", "0"]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ftcn",
         "train", str(data), "--out", str(run), "--epochs", str(EPOCHS), "--batch-size", "4", "--seed", "0",
         "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    distributed = summary["distributed"]
    assert distributed["world_size"] == 2 and distributed["backend"] == "gloo"
    first, second = distributed["rank_weights_sha256"]
    assert first == second  # both processes ended with the same weights ...
    network, _ = load_model(run / "last.pt", "cpu")
    assert weights_digest(network) == first  # ... and that model is the checkpoint written
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(EPOCHS))  # rank 0 alone logs
    assert done.stdout.count("trained ") == 1  # and rank 0 alone reports
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]


@pytest.fixture()
def state(tmp_path: Path) -> WorkerState:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                        storage_url=(tmp_path / "storage").as_uri(), train_processes=2, heartbeat_s=1)
    upgrade(settings.database_url)
    state = WorkerState(settings=settings, celery=make_celery(settings))
    videos = {f"{label[0]}{i}": (label, "val" if i == 0 else "train") for label in ("real", "fake") for i in range(3)}
    write_clip_dataset(Path(state.storage.dataset_location("datasets/d1")), videos, (8, 64, 3))
    with session_scope(state.sessions) as session:
        session.add(Dataset(id="d1", storage_prefix="datasets/d1", counts={}, owner="tester"))
    return state


def submit_train(state: WorkerState, epochs: int) -> str:
    params = {"dataset_id": "d1", "epochs": epochs, "batch_size": 2, "lr": 1e-4, "model_size": "tiny",
              "freeze": False}
    with session_scope(state.sessions) as session:
        return create_job(session, JobKind.TRAIN, params, owner="tester").id


def job(state: WorkerState, job_id: str) -> Job:
    with session_scope(state.sessions) as session:
        return session.get(Job, job_id)


def trainers() -> list[str]:
    """Command lines of torchrun and its training processes still alive on this machine."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "torch.distributed.run" in line or "-m ftcn train" in line:
            found.append(line)
    return found


def test_train_job_uses_every_process_of_its_worker(state: WorkerState) -> None:
    job_id = submit_train(state, EPOCHS)
    assert execute(job_id, state) is JobStatus.SUCCEEDED, job(state, job_id).error_message
    done = job(state, job_id)
    assert done.result["processes"] == 2 and done.result["epochs"] == EPOCHS
    assert (done.progress, done.stage) == (100.0, "done")
    assert all(state.storage.exists(key) for key in done.result["artifacts"].values())


def test_canceling_a_distributed_train_job_stops_its_processes(state: WorkerState) -> None:
    job_id = submit_train(state, 200)
    outcome: list[JobStatus | None] = []
    runner = threading.Thread(target=lambda: outcome.append(execute(job_id, state)))
    runner.start()
    deadline = time.monotonic() + 240
    while job(state, job_id).progress <= 0:  # an epoch ended in the training processes: progress reached the job
        assert runner.is_alive() and time.monotonic() < deadline, job(state, job_id).error_message
        time.sleep(0.5)
    assert trainers()
    with session_scope(state.sessions) as session:
        job_row = session.get(Job, job_id)
        move_job(session, job_row, JobStatus.CANCELED)
    runner.join(timeout=60)
    assert not runner.is_alive() and outcome == [JobStatus.CANCELED]
    assert job(state, job_id).status == JobStatus.CANCELED.value
    assert trainers() == []
