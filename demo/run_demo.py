"""``make demo``: the whole service on one machine, driven over HTTP as a client would.

Starts its own Redis, migrates a SQLite database, starts the API under gunicorn and one Celery worker (local-file
storage), all under one supervisor that stops them on Ctrl-C or at the end. Then: makes a synthetic real/fake
set, submits ``preprocess``, ``train`` (tiny model, all layers) and ``predict`` on the real talking-face sample
and on a held-out synthetic fake, polling with a progress line, and prints verdicts and links.

With ``FTCN_TT_WEIGHTS=/path/ftcn_tt.pth`` the official weights are registered as the default model and training
is skipped. A model with random weights is never used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "ftcn" / "synth" / "media" / "carphone_pristine.mp4"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start listening on port {port}")


@contextmanager
def supervised(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process in its own group, stopped (TERM, then KILL) when the block ends, however it ends."""
    with open(log, "ab") as handle:
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "demo-service")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument("--keep-running", action="store_true", help="leave the service up until Ctrl-C")
    args = parser.parse_args(argv)
    started = time.monotonic()
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is missing: apt-get install redis-server (make demo does it when root)")
    shutil.rmtree(args.home, ignore_errors=True)
    args.home.mkdir(parents=True)
    logs = args.home / "logs"
    logs.mkdir()
    redis_port, api_port = free_port(), args.port or free_port()
    env = {**os.environ, "FTCN_DATABASE_URL": f"sqlite:///{args.home / 'ftcn.sqlite3'}",
           "FTCN_STORAGE_URL": (args.home / "storage").as_uri(), "FTCN_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "FTCN_SECRET_KEY": os.urandom(16).hex()}
    env.pop("FTCN_TT_WEIGHTS", None)
    from api.client import Client, progress_line

    with ExitStack() as stack:
        def stop(signum, frame):  # Ctrl-C or TERM: unwind the stack, which stops every child
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        step("starting Redis, migrating SQLite, starting the API (gunicorn) and a worker (Celery)")
        redis = stack.enter_context(supervised([redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1",
                                                "--save", "", "--appendonly", "no", "--dir", str(args.home)],
                                               env, logs / "redis.log"))
        wait_for_port(redis_port, redis, "redis-server")
        subprocess.run([str(BIN / "ftcn-admin"), "migrate"], env=env, check=True, cwd=ROOT)
        token = subprocess.run([str(BIN / "ftcn-admin"), "token", "create", "--owner", "demo", "--name", "demo",
                                "--admin", "--train"], env=env, check=True, cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
        official = os.environ.get("FTCN_TT_WEIGHTS")
        if official:
            step(f"registering the official weights {official} as the default model")
            subprocess.run([str(BIN / "ftcn-admin"), "register-model", official, "--name", "ftcn_tt (official)",
                            "--default"], env=env, check=True, cwd=ROOT)
        api = stack.enter_context(supervised([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{api_port}", "--workers",
                                              "2", "--timeout", "120", "api:create_app()"], env, logs / "api.log"))
        worker = stack.enter_context(supervised([str(BIN / "celery"), "-A", "worker", "worker", "-Q",
                                                 "predict,train", "--concurrency", "1", "--loglevel", "INFO"],
                                                env, logs / "worker.log"))
        wait_for_port(api_port, api, "the API")
        base = f"http://127.0.0.1:{api_port}"
        client = Client(base, token)
        deadline = time.monotonic() + 120
        while requests.get(base + "/readyz", timeout=10).status_code != 200:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not come up; see {logs / 'worker.log'}")
            time.sleep(1)
        print(f"API up at {base} (logs in {logs})")
        print(f"API token (admin, train) for this demo: {token}\n  e.g. FTCN_TOKEN={token} "
              f"{BIN / 'ftcn-client'} --api {base} status JOB_ID   or paste it into {base}/")

        work = Path(tempfile.mkdtemp(prefix="ftcn-demo-"))
        stack.callback(shutil.rmtree, work, True)
        step("making a synthetic real/fake set (24 videos) and a held-out pair")
        subprocess.run([str(BIN / "ftcn"), "synth", str(work / "synth"), "--videos", "24", "--seed", "2"], check=True)
        subprocess.run([str(BIN / "ftcn"), "synth", str(work / "held_out"), "--videos", "2", "--seed", "99"],
                       check=True)
        model_id = None
        if not official:
            archive = work / "dataset.zip"
            with zipfile.ZipFile(archive, "w") as bundle:
                for video in sorted((work / "synth").rglob("*.mp4")):
                    bundle.write(video, video.relative_to(work / "synth").as_posix())
            step("POST /jobs/preprocess (uploaded archive)")
            job = client.wait(client.preprocess(archive, {"val": 0.25})["id"], progress_line)
            if job["status"] != "succeeded":
                raise SystemExit(f"preprocess failed: {job['error']}")
            dataset_id = job["result"]["dataset_id"]
            print(f"  dataset {dataset_id}: {job['result']['clips']} clips from {job['result']['videos']} videos")
            step("POST /jobs/train (tiny model, all layers, 20 epochs on CPU)")
            job = client.wait(client.train(dataset_id=dataset_id, freeze=False, epochs=20, make_default=True,
                                           name="synthetic demo")["id"], progress_line)
            if job["status"] != "succeeded":
                raise SystemExit(f"train failed: {job['error']}")
            model_id = job["result"]["model_id"]
            metrics = job["result"]["metrics"]
            print(f"  model {model_id}: validation AUC clip {metrics['clip']['auc']:.3f}, "
                  f"video {metrics['video']['auc']:.3f}; threshold {job['result']['threshold']:.3f}")
            for name, link in job["links"].items():
                print(f"  {name}: {client.absolute(link)}")
        for label, video in (("real talking-face sample", SAMPLE),
                             ("held-out synthetic fake", work / "held_out" / "fake" / "fake_0000.mp4"),
                             ("held-out synthetic real", work / "held_out" / "real" / "real_0000.mp4")):
            step(f"POST /jobs/predict: {label}")
            job = client.wait(client.predict(str(video), model_id)["id"], progress_line)
            if job["status"] != "succeeded":
                print(f"  failed: {job['error']}")
                continue
            result = job["result"]
            score = "n/a" if result["score"] is None else f"{result['score']:.3f}"
            print(f"  verdict {result['verdict']} (score {score}, threshold {result['threshold']:.3f}, "
                  f"{result['faces']} face(s))")
            for name, link in job["links"].items():
                print(f"  {name}: {client.absolute(link)}")
        print(f"\ndemo finished in {time.monotonic() - started:.0f} s; the API is at {base}")
        if args.keep_running:
            print("Ctrl-C stops everything.")
            try:
                while api.poll() is None and worker.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\nstopped")
        raise SystemExit(130)
